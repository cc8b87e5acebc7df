"""Streamed JSON Lines answers: rows are encoded as they are read, never held in memory at once.

The large downloads (the DPO/KTO exports, the my-data export) have PostgreSQL write the lines:
``COPY (SELECT <line> …) TO STDOUT`` sends each line as soon as the plan yields its row, and the
bytes go to the response without a Python object per row. :func:`json_line` spells a row as
``DjangoJSONEncoder(ensure_ascii=False)`` spells a ``dict`` of strings and booleans, and
:func:`in_id_order` reads rows in id order from the primary key's index, so the first line comes
at once instead of after a sort of the whole result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import BooleanField, F, Func, QuerySet, Subquery, TextField, Value
from django.http import StreamingHttpResponse
from rest_framework.renderers import BaseRenderer

JSONL_MEDIA_TYPE = "application/x-ndjson"
CHUNK_BYTES = 64 * 1024


class JSONLinesRenderer(BaseRenderer):
    """Lets clients ask for ``application/x-ndjson``; errors then come as one JSON line."""

    media_type = JSONL_MEDIA_TYPE
    format = "jsonl"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return (json.dumps(data, cls=DjangoJSONEncoder) + "\n").encode()


def gathered(pieces: Iterable[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """``pieces`` joined into chunks of about ``size`` bytes (fewer, larger writes)."""
    buffer: list[bytes] = []
    held = 0
    for piece in pieces:
        buffer.append(piece)
        held += len(piece)
        if held >= size:
            yield b"".join(buffer)
            buffer, held = [], 0
    if buffer:
        yield b"".join(buffer)


# -- lines written by PostgreSQL ------------------------------------------------------------------
class JsonValue(Func):
    """SQL: a text or boolean value as JSON text (``null`` for NULL). ``to_json`` escapes exactly
    what Python's ``json`` escapes with ``ensure_ascii=False`` (``"``, ``\\``, the control
    characters, ``\\n`` and the like by name, the rest as lowercase ``\\u00XX``)."""

    template = "COALESCE(to_json(%(expressions)s)::text, 'null')"
    output_field = TextField()


def json_line(**values: Any) -> Func:
    """SQL: the JSON object ``{key: value, …}`` (keys in the given order), spelled as
    ``DjangoJSONEncoder(ensure_ascii=False).encode`` spells that ``dict``: ``", "`` and ``": "``
    as separators, non-ASCII text as is. Each value is an expression of text or boolean type."""
    parts: list[Any] = []
    for i, (key, value) in enumerate(values.items()):
        parts += [Value(("{" if i == 0 else ", ") + json.dumps(key) + ": "), JsonValue(value)]
    return Func(*parts, Value("}"), function="concat", output_field=TextField())


class _IdAmong(Func):
    """SQL: ``<pk> = ANY(ARRAY(<subquery of ids>))``."""

    arg_joiner = " = ANY(ARRAY"
    template = "%(expressions)s)"
    output_field = BooleanField()


def in_id_order(rows: QuerySet) -> QuerySet:
    """The same rows as ``rows``, in id order, read through the primary key's index.

    The ids are gathered first (from whichever index serves ``rows``' filters: small integers,
    no row bodies); the index scan over ``pk = ANY(ids)`` then yields the rows already in order,
    the first one at once, where a plain ``ORDER BY id`` over a user's rows would sort every
    joined row (texts and all) before the first came out.
    """
    ids = Subquery(rows.order_by().values("pk"))
    return rows.model._base_manager.filter(_IdAmong(F("pk"), ids)).order_by("pk")


def _counted(cursor: CursorWrapper, sql: str) -> AbstractContextManager[None]:
    """Where Django logs queries (DEBUG, tests), a COPY is logged and counted like the rest."""
    if isinstance(cursor, CursorDebugWrapper):
        return cursor.debug_sql(sql)
    return nullcontext()


def copied_lines(sql: str, params: Sequence[Any] = ()) -> Iterator[bytes]:
    """The rows of the one-column ``SELECT`` ``sql`` as lines, straight from ``COPY … TO
    STDOUT``, each piece whole lines, as COPY's text format writes them: every backslash doubled
    (the only character of a JSON line it escapes, JSON having no raw control characters); see
    :func:`jsonl_chunks`."""
    copy_sql = f"COPY ({sql}) TO STDOUT"
    with (
        connection.cursor() as cursor,
        _counted(cursor, copy_sql),
        cursor.cursor.copy(copy_sql, params) as copy,
    ):
        for data in copy:
            yield bytes(data)


def queryset_lines(lines: QuerySet) -> Iterator[bytes]:
    """:func:`copied_lines` of ``lines``, a ``values_list`` of one text column."""
    sql, params = lines.query.sql_with_params()
    return copied_lines(sql, params)


def jsonl_chunks(copied: Iterable[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Lines from :func:`copied_lines` as chunks of about ``size`` bytes, each doubled backslash
    halved back; the first line alone first (the first byte as soon as the first row is read)."""
    pieces = iter(copied)
    for first in pieces:
        yield first.replace(b"\\\\", b"\\")
        break
    for chunk in gathered(pieces, size):
        yield chunk.replace(b"\\\\", b"\\")


def jsonl_attachment(chunks: Iterable[bytes], filename: str) -> StreamingHttpResponse:
    """A streamed JSON Lines download of already encoded ``chunks``."""
    response = StreamingHttpResponse(chunks, content_type=JSONL_MEDIA_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
