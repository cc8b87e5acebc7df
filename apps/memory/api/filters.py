"""Query filters of the memory list: date range, owner, source, origin, edit and superseded."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from apps.common.filters import IdFilter, OwnedFilterSet
from apps.memory.models import MemoryEntry


class MemoryEntryFilter(OwnedFilterSet):
    source = django_filters.CharFilter(label="Context source, e.g. news.")
    origin = django_filters.ChoiceFilter(choices=MemoryEntry.Origin.choices)
    edit = IdFilter(field_name="edit_id", label="The edit it was learned from.")
    superseded = django_filters.ChoiceFilter(  # not BooleanFilter: it ignores a typo
        choices=[("true", "true"), ("false", "false")],
        method="filter_superseded",
        label="true: only entries a newer one replaced; false: only active ones.",
    )

    class Meta:
        model = MemoryEntry
        fields: list[str] = []

    def filter_superseded(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(superseded_by__isnull=value != "true")
