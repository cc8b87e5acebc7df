"""Reads for a user's data as a whole: every row of every owned model, as JSON Lines, for export.

PostgreSQL writes the lines: one ``COPY (SELECT <line> …) TO STDOUT`` per owned model, whose
bytes go to the response as they arrive, without a model instance or a Python ``dict`` per row.
Each line is spelled as ``DjangoJSONEncoder`` spells the row's ``values()`` (the export's format
before it was built in SQL): ``{"model": label, "fields": {column: value, …}}`` with the columns
in the model's order, ``", "``/``": "`` separators, non-ASCII text as is, times as
``2026-05-01T09:30:00.123Z``; JSON columns keep their values (a number may be spelled
differently, e.g. ``1e-07`` as ``0.0000001``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from pgvector.django import VectorField

from apps.accounts.models import User
from apps.common.streaming import copied_lines, jsonl_chunks
from apps.privacy.relations import owned_models

__all__ = ["ACCOUNT_FIELDS", "owned_models", "user_data_jsonl"]

ACCOUNT_FIELDS = ["id", "username", "email", "external_id", "client_app_id", "date_joined"]
CHUNK_BYTES = 256 * 1024
"""Bytes gathered before they are handed to the response."""

_INTEGERS = {"AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField"}
_INTEGERS |= {"SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField"}
_INTEGERS |= {"PositiveSmallIntegerField"}
_AS_TEXT = _INTEGERS | {"BooleanField", "JSONField"}  # their text is their JSON (jsonb: ", ")
_STRINGS = {"CharField", "TextField", "SlugField", "EmailField", "URLField", "UUIDField"}
_STRINGS |= {"DateField", "GenericIPAddressField"}  # to_json() escapes as Python does
_SECONDS = """to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS{ms}')"""
MAX_ARGUMENTS = 90  # of one concat() call; PostgreSQL takes at most 100


def _exported_fields(model: type[models.Model]) -> list[models.Field]:
    """Columns a person gets back: everything but derived vectors."""
    return [f for f in model._meta.concrete_fields if not isinstance(f, VectorField)]


def _json_text(field: models.Field) -> str:
    """An SQL expression: the column's value as ``DjangoJSONEncoder`` writes it (never NULL)."""
    column = f"t.{connection.ops.quote_name(field.column)}"
    kind = (field.target_field if field.is_relation else field).get_internal_type()
    if kind == "DateTimeField":  # milliseconds only when there are microseconds; "Z" for UTC
        whole, fraction = _SECONDS.format(c=column, ms=""), _SECONDS.format(c=column, ms=".MS")
        value = (
            f"'\"' || CASE WHEN date_trunc('second', {column}) = {column} THEN {whole} "
            f"ELSE {fraction} END || 'Z\"'"
        )
    elif kind == "FloatField":  # Python writes 1.0 where PostgreSQL writes 1
        value = f"{column}::text || CASE WHEN {column}::text ~ '^-?[0-9]+$' THEN '.0' ELSE '' END"
    elif kind == "DecimalField":  # DjangoJSONEncoder writes a Decimal as a string
        value = f"to_json({column}::text)::text"
    elif kind in _AS_TEXT:
        value = f"{column}::text"
    elif kind in _STRINGS:
        value = f"to_json({column})::text"
    else:  # arrays ([1, 2], as Python spaces them), bit strings, …
        value = f"to_jsonb({column})::text"
    return f"COALESCE({value}, 'null')"


def _concat(arguments: list[str]) -> str:
    """``concat(…)`` of the arguments, nested where there are more than one call takes."""
    if len(arguments) <= MAX_ARGUMENTS:
        return f"concat({', '.join(arguments)})"
    groups = [arguments[i : i + MAX_ARGUMENTS] for i in range(0, len(arguments), MAX_ARGUMENTS)]
    return _concat([_concat(group) for group in groups])


def _line_sql(model: type[models.Model]) -> tuple[str, list[str]]:
    """``SELECT`` of the user's rows of ``model`` as JSON lines, in id order; and its constant
    pieces (label, keys), passed as parameters."""
    fields = _exported_fields(model)
    pieces = [f", {json.dumps(field.attname)}: " for field in fields]
    label = json.dumps(model._meta.label_lower)
    pieces[0] = f'{{"model": {label}, "fields": {{{json.dumps(fields[0].attname)}: '
    arguments = [part for field in fields for part in ("%s", _json_text(field))]
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(model._meta.pk.column)
    user = connection.ops.quote_name(model._meta.get_field("user").column)
    # Only the ids are sorted (a sort of whole lines would spill to disk for a long history);
    # the primary key's index then gives the rows in that order, the first one at once.
    line = _concat([*arguments, "'}}'"])
    sql = (
        f"SELECT {line} FROM {table} t "
        f"WHERE t.{pk} = ANY(ARRAY(SELECT {pk} FROM {table} WHERE {user} = %s ORDER BY {pk})) "
        f"ORDER BY t.{pk}"
    )
    return sql, pieces


def _copied(model: type[models.Model], user_id: int) -> Iterator[bytes]:
    """The user's rows of ``model`` as JSON lines, straight from ``COPY … TO STDOUT``."""
    sql, pieces = _line_sql(model)
    return copied_lines(sql, [*pieces, user_id])


def _account_line(user: User) -> bytes:
    account = User.objects.filter(pk=user.pk).values(*ACCOUNT_FIELDS).get()
    record: dict[str, Any] = {"model": User._meta.label_lower, "fields": account}
    return (DjangoJSONEncoder(ensure_ascii=False).encode(record) + "\n").encode()


def user_data_jsonl(user: User) -> Iterator[bytes]:
    """The user's account facts, then each row they own (JSON Lines, UTF-8), model by model.

    Lines as :mod:`this module <apps.privacy.selectors>` describes; embedding vectors are left
    out. Chunks of about :data:`CHUNK_BYTES`, the account line alone first (a fast first byte).
    """
    yield _account_line(user)
    copied = itertools.chain.from_iterable(_copied(m, user.pk) for m in owned_models())
    yield from jsonl_chunks(copied, CHUNK_BYTES)
