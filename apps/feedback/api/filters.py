"""Query filters shared by the feedback lists and exports: date range, source, user, interaction."""

from __future__ import annotations

import django_filters

from apps.common.filters import IdFilter, OwnedFilterSet
from apps.feedback.models import Comparison, Edit, Interaction, Rating


class InteractionFilter(OwnedFilterSet):
    source = django_filters.CharFilter(label="Context source, e.g. news.")
    adapter_version = django_filters.CharFilter()

    class Meta:
        model = Interaction
        fields: list[str] = []


class RatingFilter(OwnedFilterSet):
    source = django_filters.CharFilter(field_name="interaction__source", label="Context source.")
    interaction = IdFilter(field_name="interaction_id")

    class Meta:
        model = Rating
        fields: list[str] = []


class EditFilter(OwnedFilterSet):
    source = django_filters.CharFilter(field_name="interaction__source", label="Context source.")
    interaction = IdFilter(field_name="interaction_id")

    class Meta:
        model = Edit
        fields: list[str] = []


class ComparisonFilter(OwnedFilterSet):
    source = django_filters.CharFilter(label="Context source.")
    choice = django_filters.ChoiceFilter(choices=Comparison.Choice.choices)

    class Meta:
        model = Comparison
        fields: list[str] = []
