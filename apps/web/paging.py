"""Pages of a person's long lists (their texts, their learned preferences), "newer" and "older".

A page is found by an index seek from an opaque position (``?page=``, the cursor of
:mod:`apps.common.pagination`), so page 2,000 costs what page 1 costs and nothing counts the
whole history. A position that is not one (an old ``?page=3`` bookmark) shows the first page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.db.models import QuerySet
from django.http import HttpRequest

from apps.common.pagination import InvalidCursor, cursor_of, decode, order, seek, seek_keys

PARAM = "page"


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    newer: str | None  # the position of the page before, or None on the first page
    older: str | None  # the position of the page after, or None on the last page


def page_of(queryset: QuerySet, position: str | None, size: int) -> Page:
    """``size`` rows of ``queryset`` (in its own order) from ``position``, with the positions
    of the pages around them."""
    keys = seek_keys(queryset)
    if keys is None:
        raise ValueError(f"{queryset.model.__name__} lists cannot seek: order them by fields")
    found: tuple[list[Any], bool] | None = None
    if position:
        try:
            found = decode(position, keys)
        except InvalidCursor:
            found = None
    if found is None:
        rows = list(queryset.order_by(*order(keys))[: size + 1])
        reverse, started = False, False
    else:
        values, reverse = found
        rows = list(seek(queryset, keys, values, reverse)[: size + 1])
        started = True
    more = len(rows) > size
    rows = rows[:size]
    if reverse:
        rows.reverse()
    older_exists = more if not reverse else True
    newer_exists = (more if reverse else started) and bool(rows)
    return Page(
        rows=rows,
        newer=cursor_of(rows[0], keys, reverse=True) if newer_exists else None,
        older=cursor_of(rows[-1], keys) if older_exists and rows else None,
    )


def position_in(request: HttpRequest) -> str | None:
    """The page position of a GET, or of the page a POSTed form came from (its ``return_to``)."""
    if request.method == "GET":
        return request.GET.get(PARAM)
    query = parse_qs(urlsplit(request.POST.get("return_to", "")).query)
    return (query.get(PARAM) or [None])[0]
