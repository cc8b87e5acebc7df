"""Serializer fields that accept only what PostgreSQL can store, within configurable limits.

PostgreSQL refuses NUL characters and lone UTF-16 surrogates in text and JSON, and JSON's NaN and
Infinity in ``jsonb``; letting them through would turn bad input into a 500. These fields answer
400, naming the field, instead. Limits are settings read when a serializer is built (per request).
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from rest_framework import serializers

MAX_JSON_DEPTH = 8
MAX_ID = 2**63 - 1


def storable_text_problem(value: str) -> str | None:
    """Why PostgreSQL could not store ``value`` as text, or None when it can."""
    if "\x00" in value:
        return "Null characters are not allowed."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Text must be valid Unicode (no lone surrogates)."
    return None


def printable(data: Any) -> Any:
    """``data`` with every lone surrogate in its strings (and keys) written as ``\\udXXX``.

    Error messages echo the input ('"\\ud800" is not a valid choice'); a lone surrogate cannot
    be encoded as UTF-8, so rendering such a message would fail with a 500.
    """
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            return data.encode("utf-8", "backslashreplace").decode("utf-8")
        return data
    if isinstance(data, dict):
        return {printable(key): printable(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [printable(item) for item in data]
    return data


class LimitedCharField(serializers.CharField):
    """A ``CharField`` whose maximum length is the setting ``limit`` and whose text is storable."""

    def __init__(self, *, limit: str, **kwargs: Any) -> None:
        kwargs["max_length"] = getattr(settings, limit)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if problem := storable_text_problem(value):
            raise serializers.ValidationError(problem)
        return value


def check_storable_json(value: Any, max_items: int, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise ``ValidationError`` unless ``value`` fits in ``jsonb`` within the given bounds.

    Walks the value without recursion: strings and keys must be storable, numbers finite, nesting
    at most ``max_depth`` deep, and at most ``max_items`` values in all.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > max_items:
            raise serializers.ValidationError(f"At most {max_items} values are allowed.")
        if depth > max_depth:
            raise serializers.ValidationError(f"Nesting deeper than {max_depth} is not allowed.")
        if isinstance(item, str):
            if problem := storable_text_problem(item):
                raise serializers.ValidationError(problem)
        elif isinstance(item, float) and not math.isfinite(item):
            raise serializers.ValidationError("Numbers must be finite.")
        elif isinstance(item, dict):
            for key, child in item.items():
                if problem := storable_text_problem(str(key)):
                    raise serializers.ValidationError(problem)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


class StorableJSONObjectField(serializers.JSONField):
    """A JSON object that ``jsonb`` can store, of at most ``ATTUNE_MAX_JSON_ITEMS`` values."""

    default_error_messages = {"not_an_object": "Expected a JSON object."}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_an_object")
        check_storable_json(value, settings.ATTUNE_MAX_JSON_ITEMS)
        return value


class LimitedListField(serializers.ListField):
    """A ``ListField`` holding at most the setting ``limit`` items."""

    def __init__(self, *, limit: str, **kwargs: Any) -> None:
        kwargs["max_length"] = getattr(settings, limit)
        super().__init__(**kwargs)


def object_id(**kwargs: Any) -> serializers.IntegerField:
    """An id of another object, as given in a request: positive and within ``bigint``."""
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)
