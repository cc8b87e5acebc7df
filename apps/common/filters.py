"""Query filters every owned list shares: date range and owner (``user_id``, useful to staff)."""

from __future__ import annotations

import django_filters
from django import forms

from apps.common.fields import MAX_ID


class IdFilter(django_filters.NumberFilter):
    """An object id: a positive integer within bigint (anything else answers 400)."""

    field_class = forms.IntegerField

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class OwnedFilterSet(django_filters.FilterSet):
    """``created_after`` / ``created_before`` (ISO 8601) and ``user_id`` (the owner's id).

    Not ``user``: with an app key, ``?user=`` names the end user the request acts for.
    """

    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="Created at or after (ISO 8601)."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label="Created before (ISO 8601)."
    )
    user_id = IdFilter(label="Owner's user id (staff read everyone's).")
