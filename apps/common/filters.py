"""Query filters every owned list shares: date range and owner (``user_id``, useful to staff)."""

from __future__ import annotations

import datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from apps.common.fields import MAX_ID


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """An object id: a positive integer within bigint (anything else answers 400)."""

    field_class = forms.IntegerField

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class UTCDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, given to the database in UTC.

    Python accepts UTC offsets up to ±23:59, PostgreSQL only up to ±15:59: passed on as given,
    ``+16:00`` would be a 500. In UTC any offset Python parses is a correct bound; one that moves
    the time out of years 1-9999 is an invalid date-time (400, naming the parameter).
    """

    def to_python(self, value: Any) -> datetime.datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(datetime.UTC)
        except OverflowError as err:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from err


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """``IsoDateTimeFilter`` whose value is in UTC (see :class:`UTCDateTimeField`)."""

    field_class = UTCDateTimeField


class OwnedFilterSet(django_filters.FilterSet):
    """``created_after`` / ``created_before`` (ISO 8601, any UTC offset) and ``user_id`` (the
    owner's id).

    Not ``user``: with an app key, ``?user=`` names the end user the request acts for.
    """

    created_after = UTCDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="Created at or after (ISO 8601)."
    )
    created_before = UTCDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label="Created before (ISO 8601)."
    )
    user_id = IdFilter(label="Owner's user id (staff read everyone's).")
