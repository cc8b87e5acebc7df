"""Paging for every list of the API: ``limit``/``offset`` as ever, and a cursor that seeks.

A page answers ``{count, next, previous, results}``. ``?limit=`` beyond ``ATTUNE_MAX_PAGE_SIZE``
answers that many items (not an error, as DRF's ``max_limit`` does), so one request can never ask
the database for a whole table. The ceiling is read per request, so a deployment (or a test)
changes it in settings alone.

``next`` carries an opaque ``cursor``: the sort key of the page's last row (for most lists
``(created_at, id)``). The next page starts right after that row with an index seek (``WHERE
(created_at, id) < (…)``, on the ``(user, -created_at, -id)`` indexes), so every page costs the
same however deep it is, and rows added or deleted meanwhile neither repeat nor skip a row.
``previous`` on a cursor page is a cursor too (it seeks the other way). ``offset`` still works:
small offsets as before; from :data:`DEFERRED_OFFSET` on, the page's ids are read first (an
index-only scan) and then only their rows, so a deep offset reads no rows it skips. A list ordered
by something a seek cannot use (a related field, an expression, a nullable field) pages by offset
only, and a cursor there answers 400.

:func:`seek_keys`, :func:`cursor_of` and :func:`seek` serve the web pages' "older" and "newer"
links too.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

from apps.common.fields import storable_text_problem

DEFERRED_OFFSET = 1000
"""From this offset on, an offset page reads its ids first and then only their rows."""


class InvalidCursor(ValueError):
    """A cursor this list did not make (or no longer understands)."""


@dataclass(frozen=True)
class Key:
    """One column of a list's order: a concrete, non-null field of the model."""

    field: models.Field
    descending: bool

    @property
    def name(self) -> str:
        return self.field.attname


def seek_keys(queryset: QuerySet) -> tuple[Key, ...] | None:
    """The queryset's order as seek keys, ending with the primary key; None when it cannot
    seek (ordered by a related field, an expression or a nullable field)."""
    query = queryset.query
    meta = queryset.model._meta
    if query.order_by:
        ordering: Sequence[Any] = query.order_by
    else:
        ordering = meta.ordering if query.default_ordering else ()
    keys: list[Key] = []
    for item in ordering:
        if not isinstance(item, str) or item in ("?", "-?") or "__" in item:
            return None
        descending = item.startswith("-")
        name = item.removeprefix("-")
        try:
            field = meta.pk if name == "pk" else meta.get_field(name)
        except FieldDoesNotExist:
            return None
        if not field.concrete or field.null or field.is_relation:
            return None
        keys.append(Key(field, descending))
        if field.primary_key:
            return tuple(keys)
    return (*keys, Key(meta.pk, keys[-1].descending if keys else False))


def order(keys: Sequence[Key], reverse: bool = False) -> list[str]:
    """``order_by`` arguments for ``keys`` (the other way round when ``reverse``)."""
    return [("-" if key.descending != reverse else "") + key.name for key in keys]


def cursor_of(row: models.Model, keys: Sequence[Key], reverse: bool = False) -> str:
    """An opaque cursor at ``row``: the page after it (before it when ``reverse``)."""
    values = [_plain(getattr(row, key.name)) for key in keys]
    raw = json.dumps({"p": values, "r": int(reverse)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, keys: Sequence[Key]) -> tuple[list[Any], bool]:
    """The position (one value per key) and direction of a cursor; :class:`InvalidCursor` if
    it is not one of this list's."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error) as err:
        raise InvalidCursor from err
    if not isinstance(raw, dict) or raw.get("r") not in (0, 1):
        raise InvalidCursor
    values = raw.get("p")
    if not isinstance(values, list) or len(values) != len(keys):
        raise InvalidCursor
    return [_value(key.field, value) for key, value in zip(keys, values, strict=True)], bool(
        raw["r"]
    )


def seek(queryset: QuerySet, keys: Sequence[Key], position: Sequence[Any], reverse: bool) -> Any:
    """``queryset`` after ``position`` in the keys' order (before it when ``reverse``), ordered
    the way it is walked. The first key's bound comes first, so the index seeks to it."""
    clauses, equal = [], {}
    for key, value in zip(keys, position, strict=True):
        later = "lt" if key.descending != reverse else "gt"
        clauses.append(Q(**equal, **{f"{key.name}__{later}": value}))
        equal[key.name] = value
    first = keys[0]
    bound = Q(**{f"{first.name}__{'lte' if first.descending != reverse else 'gte'}": position[0]})
    return queryset.filter(bound & reduce(or_, clauses)).order_by(*order(keys, reverse))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _value(field: models.Field, value: Any) -> Any:
    """A cursor's value for ``field``, checked as the database will take it."""
    if isinstance(field, models.DateTimeField):
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None or parsed.tzinfo is None:
            raise InvalidCursor
        try:
            return parsed.astimezone(datetime.UTC)
        except OverflowError as err:
            raise InvalidCursor from err
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidCursor
    if isinstance(value, str) and storable_text_problem(value):
        raise InvalidCursor
    try:
        return field.clean(value, None)
    except (DjangoValidationError, TypeError, ValueError) as err:
        raise InvalidCursor from err


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    cursor_query_param = "cursor"
    cursor_query_description = (
        "Opaque position from a page's `next` or `previous` link; the page starts right after "
        "(or ends right before) it, found by an index seek however deep. Not with `offset`."
    )
    offset_query_description = (
        "The initial index from which to return the results. Deep offsets are served, but the "
        "`next` link's cursor reaches the same page faster and never repeats or skips a row."
    )

    keys: tuple[Key, ...] | None = None
    reverse = False
    has_more = False
    rows: list[Any]

    @property
    def max_limit(self) -> int:  # type: ignore[override]
        return settings.ATTUNE_MAX_PAGE_SIZE

    def paginate_queryset(
        self, queryset: QuerySet, request: Request, view: Any = None
    ) -> list[Any] | None:
        self.request = request
        self.limit = self.get_limit(request)
        self.keys = seek_keys(queryset) if isinstance(queryset, QuerySet) else None
        if self.keys is not None:
            queryset = queryset.order_by(*order(self.keys))
        self.offset = self.get_offset(request)
        token = request.query_params.get(self.cursor_query_param)
        if token is None:
            self.cursor = None
            self.rows = self._offset_page(queryset)
        else:
            self.cursor = token
            self.rows = self._cursor_page(queryset, token)
        return self.rows

    def _offset_page(self, queryset: QuerySet) -> list[Any]:
        self.count = self.get_count(queryset)
        if self.count > self.limit and self.template is not None:
            self.display_page_controls = True
        self.has_more = self.offset + self.limit < self.count
        if self.count == 0 or self.offset > self.count:
            return []
        window = slice(self.offset, self.offset + self.limit)
        if self.keys is not None and self.offset >= DEFERRED_OFFSET:
            return list(queryset.filter(pk__in=queryset.values("pk")[window]))
        return list(queryset[window])

    def _cursor_page(self, queryset: QuerySet, token: str) -> list[Any]:
        if self.offset_query_param in self.request.query_params:
            raise ValidationError({self.offset_query_param: ["Give a cursor or an offset."]})
        if self.keys is None:
            raise ValidationError({self.cursor_query_param: ["This list pages by offset."]})
        try:
            position, self.reverse = decode(token, self.keys)
        except InvalidCursor as err:
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from err
        self.count = self.get_count(queryset)
        rows = list(seek(queryset, self.keys, position, self.reverse)[: self.limit + 1])
        self.has_more = len(rows) > self.limit
        rows = rows[: self.limit]
        if self.reverse:
            rows.reverse()
        return rows

    def _link(self, **params: Any) -> str:
        url = self.request.build_absolute_uri()
        url = remove_query_param(url, self.offset_query_param)
        url = replace_query_param(url, self.limit_query_param, self.limit)
        url = remove_query_param(url, self.cursor_query_param)
        for name, value in params.items():
            url = replace_query_param(url, name, value)
        return url

    def get_next_link(self) -> str | None:
        if self.keys is None:
            return super().get_next_link()
        more = self.has_more if not self.reverse else True
        if not more:
            return None
        if not self.rows:  # a stale cursor: the rows around it are gone; start afresh
            return self._link()
        return self._link(cursor=cursor_of(self.rows[-1], self.keys))

    def get_previous_link(self) -> str | None:
        if self.cursor is None:
            return super().get_previous_link()
        if self.reverse and not self.has_more:
            return None
        if not self.rows:
            return self._link()
        return self._link(cursor=cursor_of(self.rows[0], self.keys, reverse=True))

    def get_html_context(self) -> dict[str, Any]:
        if self.cursor is None:
            return super().get_html_context()
        return {
            "previous_url": self.get_previous_link(),
            "next_url": self.get_next_link(),
            "page_links": [],
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["description"] = (
                    f"Number of results to return per page (at most {self.max_limit}; "
                    "a larger limit answers that many)."
                )
        cursor = {
            "name": self.cursor_query_param,
            "required": False,
            "in": "query",
            "description": self.cursor_query_description,
            "schema": {"type": "string"},
        }
        return [*parameters, cursor]
