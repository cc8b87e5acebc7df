"""Template helpers of the web UI and the console."""

from __future__ import annotations

import functools
from typing import Any

from django import template
from django.urls import get_script_prefix, reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator, add_truncation_text, calculate_truncate_chars_length

register = template.Library()


@register.filter
def figure(value: Any) -> str:
    """A number as a short figure (3 decimals at most); anything else as text; none as a dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value == value else "—"
    return str(value)


@register.filter
def percent(value: Any) -> str:
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return "—"


@register.filter(expects_localtime=True)
def minute(value: Any) -> str:
    """A date and time as ``Y-m-d H:i`` in the current time zone: what ``|date:"Y-m-d H:i"``
    shows, without parsing the format on each call (a console page shows a few hundred)."""
    if not value:
        return ""
    return value.strftime("%Y-%m-%d %H:%M")


@register.filter(expects_localtime=True)
def day(value: Any) -> str:
    """A date as ``Y-m-d`` in the current time zone (``|date:"Y-m-d"``, as :func:`minute`)."""
    if not value:
        return ""
    return value.strftime("%Y-%m-%d")


@register.filter(is_safe=True)
def clip(value: Any, length: int) -> str:
    """``|truncatechars:length``, with a short way for plain ASCII text (no combining marks,
    already normalized), which is what a table of contexts mostly holds: Django's filter
    normalizes and walks every row's text character by character."""
    text = str(value)
    if length <= 0 or not text.isascii():
        return Truncator(text).chars(length)
    if len(text) <= length:
        return text
    return add_truncation_text(text[: calculate_truncate_chars_length(length, None) or 0])


_DIFF_TAGS = {"equal": "span", "delete": "del"}  # anything else is an insert


@register.filter
def diff_markup(diff: Any) -> SafeString:
    """A word diff's spans as ``web/_diff.html`` shows them (``<span>`` kept, ``<del>``
    deleted, ``<ins>`` inserted, a space between); one join instead of a template loop over
    every span, which dominated the console's page of a heavy editor."""
    parts = []
    for op in diff or ():
        kind, text = (op["op"], op["text"]) if isinstance(op, dict) else (op.op, op.text)
        tag = _DIFF_TAGS.get(kind, "ins")
        parts.append(f"<{tag}>{conditional_escape(text)}</{tag}>")
    return mark_safe(" ".join(parts))


@register.filter
def console_user_url(user_id: Any) -> str:
    """``{% url 'console:user' user_id %}`` for a table of many rows: the path is reversed once
    per script prefix, then only the id changes."""
    return f"{_console_user_prefix(get_script_prefix())}{int(user_id)}"


@functools.lru_cache(maxsize=8)
def _console_user_prefix(script_prefix: str) -> str:
    found = reverse("console:user", kwargs={"pk": 1})
    return found[: -len("1")]
