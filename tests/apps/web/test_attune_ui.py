"""The template helpers that replace per-row template work on long pages show exactly what the
template code they replace showed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from apps.web.templatetags.attune_ui import console_user_url, day, diff_markup, minute

OLD_DIFF = Template(
    '{% for op in diff %}{% if op.op == "equal" %}<span>{{ op.text }}</span>'
    '{% elif op.op == "delete" %}<del>{{ op.text }}</del>{% else %}<ins>{{ op.text }}</ins>'
    "{% endif %}{% if not forloop.last %} {% endif %}{% endfor %}"
)


@pytest.mark.parametrize(
    "diff",
    [
        [],
        [{"op": "equal", "text": "The council"}],
        [
            {"op": "insert", "text": "Big <b>news</b> & more!"},
            {"op": "equal", "text": "met on"},
            {"op": "delete", "text": 'Monday "early"'},
            {"op": "insert", "text": "Friday"},
        ],
    ],
)
def test_diff_markup_is_the_template_loop(diff):
    assert diff_markup(diff) == OLD_DIFF.render(Context({"diff": diff}))


@override_settings(TIME_ZONE="Europe/Paris")
@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 3, 29, 0, 59, tzinfo=dt.UTC),  # the night the clocks change there
        dt.datetime(2026, 12, 31, 23, 5, tzinfo=dt.UTC),  # next year there
        None,
    ],
)
def test_minute_and_day_are_the_date_filter(value):
    with timezone.override("Europe/Paris"):
        context = Context({"v": value})
        old = Template('{{ v|date:"Y-m-d H:i" }}|{{ v|date:"Y-m-d" }}').render(context)
        new = Template("{% load attune_ui %}{{ v|minute }}|{{ v|day }}").render(context)
    assert new == old
    if value is not None:
        assert minute(value) == value.strftime("%Y-%m-%d %H:%M")
        assert day(value) == value.strftime("%Y-%m-%d")


def test_console_user_url_is_the_reversed_url():
    for pk in (1, 42, 2**62):
        assert console_user_url(pk) == reverse("console:user", kwargs={"pk": pk})


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short",
        "x" * 120,
        "x" * 121,
        "The council met on Monday and approved the new tram line. " * 5,
        "Caf\u00e9 au lait " * 20,  # not ASCII
        "e\u0301" * 130,  # combining marks
        "\u2b50 stars " * 30,
    ],
)
@pytest.mark.parametrize("length", [1, 2, 10, 120])
def test_clip_is_truncatechars(text, length):
    old = Template("{{ t|truncatechars:n }}").render(Context({"t": text, "n": length}))
    new = Template("{% load attune_ui %}{{ t|clip:n }}").render(Context({"t": text, "n": length}))
    assert new == old
