"""What keeps the console's heavy pages cheap at size (issue 15) without changing what they say:
a text's edits are bounded on a user's page, the jobs tables read at most what they list, and
the drawn figures are reused only while what they were drawn from is unchanged."""

from __future__ import annotations

import re
import threading

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.adapters.models import FitJob
from apps.console import selectors
from tests.support.factories import EditFactory, InteractionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _queries(client, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as seen:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(seen), response.content.decode()


def test_a_text_saved_over_and_over_shows_its_newest_edits_and_how_many(staff, user):
    text = InteractionFactory(user=user, output="one two three")
    made = [EditFactory(interaction=text, edited=f"one two {n}") for n in range(3)]
    n_before, html = _queries(staff, f"/console/users/{user.pk}")
    assert html.count("<h3>Edit #") == 3 and "edits-shown" not in html
    made += [EditFactory(interaction=text, edited=f"one two {n}") for n in range(3, 40)]
    n_after, html = _queries(staff, f"/console/users/{user.pk}")
    shown = [int(pk) for pk in re.findall(r"<h3>Edit #(\d+) ", html)]
    assert shown == [e.pk for e in reversed(made)][: selectors.EDITS_SHOWN]  # newest first
    assert f"The newest {selectors.EDITS_SHOWN} of 40 edits of this text" in html
    assert n_after <= n_before  # neither the rows nor the queries grow with the edits


def _points(html: str, series: str) -> int:
    """How many points the line of ``series`` has on a page's chart."""
    found = re.search(r'<polyline points="([^"]*)"[^>]*><title>' + re.escape(series), html)
    return len(found.group(1).split()) if found else 0


def test_the_cost_plot_follows_a_new_edit_at_once(staff, user):
    EditFactory(interaction=InteractionFactory(user=user), distance=3)
    first = _queries(staff, f"/console/users/{user.pk}")[1]
    assert _points(first, "edit cost") == 1
    assert _points(_queries(staff, f"/console/users/{user.pk}")[1], "edit cost") == 1
    EditFactory(interaction=InteractionFactory(user=user), distance=5)
    html = _queries(staff, f"/console/users/{user.pk}")[1]
    assert _points(html, "edit cost") == 2  # the new round is drawn, not the kept plot


def test_the_overall_plot_redraws_an_editors_line_when_they_edit(staff, user):
    EditFactory(interaction=InteractionFactory(user=user), distance=4)
    assert _points(_queries(staff, "/console/plots")[1], user.username) == 1
    assert _points(_queries(staff, "/console/plots")[1], user.username) == 1
    EditFactory(interaction=InteractionFactory(user=user), distance=2)
    assert _points(_queries(staff, "/console/plots")[1], user.username) == 2


def test_the_jobs_tables_read_at_most_what_they_list_open_first():
    person = UserFactory()
    person.save()
    done = [FitJob.objects.create(user=person, status="succeeded") for _ in range(5)]
    open_ = [FitJob.objects.create(user=person, status=s) for s in ("queued", "running")]
    found = selectors.fit_jobs(limit=4)
    assert [j.pk for j in found] == [open_[1].pk, open_[0].pk, done[4].pk, done[3].pk]
    assert found[0].user.username == person.username
    with CaptureQueriesContext(connection) as seen:
        assert len(selectors.fit_jobs(limit=2)) == 2
    assert len(seen) == 1  # the open jobs fill the table: the finished ones are not read
    assert selectors.fit_jobs(person, limit=10)[-1].pk == done[0].pk


def test_a_stale_series_is_served_at_once_and_its_refresh_sent_aside(monkeypatch, user):
    """Without eager mode the refresh is sent from a thread of its own: a process's first send
    opens the broker connection, which a page must not wait for."""
    EditFactory(interaction=InteractionFactory(user=user), distance=4)
    computed_at, rounds = selectors.mean_cost_per_round_stamped()
    key = f"console:mean-cost-per-round:{selectors.MAX_ROUNDS}"
    cache.set(key, (computed_at - selectors.OVERALL_TTL - 1, rounds))
    cache.delete(f"{key}:refreshing")
    sent_from, real_send = [], selectors._send_refresh

    def observed(max_rounds: int) -> None:
        sent_from.append(threading.current_thread())
        real_send(max_rounds)

    monkeypatch.setattr(selectors, "_send_refresh", observed)
    EditFactory(interaction=InteractionFactory(user=user), distance=2)
    assert len(selectors.mean_cost_per_round()) == 1  # the kept series, served at once
    for thread in threading.enumerate():
        if thread.name == "console-refresh":
            thread.join(timeout=30)
    assert len(sent_from) == 1 and sent_from[0] is not threading.main_thread()
    assert len(selectors.mean_cost_per_round()) == 1  # asked once per OVERALL_TTL, not per page
    assert len(sent_from) == 1
