"""Paging of the API's lists: cursors walk a list whole while it changes; offsets still work;
filters combine with cursors; bad cursors answer 400; a page's queries do not grow with history."""

from __future__ import annotations

import base64
import datetime
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.common import pagination
from apps.feedback.models import Interaction
from apps.memory.models import MemoryEntry
from tests.support.factories import (
    ComparisonFactory,
    EditFactory,
    InteractionFactory,
    RatingFactory,
)

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2025, 3, 1, tzinfo=datetime.UTC)


def _history(user, count: int, source: str = "news", ties: int = 3) -> list[Interaction]:
    """``count`` interactions a minute apart, the newest ``ties`` sharing one time."""
    made = InteractionFactory.create_batch(count, user=user, source=source)
    for number, row in enumerate(made):
        minute = min(number, count - ties)
        Interaction.objects.filter(pk=row.pk).update(
            created_at=T0 + datetime.timedelta(minutes=minute)
        )
    return made


def _expected(user, **filters) -> list[int]:
    rows = Interaction.objects.filter(user=user, **filters).order_by("-created_at", "-id")
    return list(rows.values_list("pk", flat=True))


def _walk(client, url: str, limit: int = 4, between=None) -> tuple[list[int], int]:
    """Ids in the order the ``next`` links give them; and the number of pages."""
    seen, pages = [], 0
    link = f"{url}{'&' if '?' in url else '?'}limit={limit}"
    while link:
        body = client.get(link).json()
        seen += [row["id"] for row in body["results"]]
        pages += 1
        link = body["next"]
        if between is not None:
            between(pages)
    return seen, pages


def test_a_cursor_walk_gives_every_row_once_in_order_ties_included(client_for, user):
    _history(user, 23)
    seen, pages = _walk(client_for(user), "/api/interactions")
    assert seen == _expected(user) and pages == 6


def test_rows_added_and_deleted_during_a_walk_neither_repeat_nor_skip(client_for, user):
    _history(user, 20)
    before = _expected(user)
    removed = before[10]
    added_old = []

    def meanwhile(page: int) -> None:
        if page == 1:  # newer rows land before the cursor; older ones after it; one row goes
            InteractionFactory.create_batch(3, user=user)
            old = InteractionFactory(user=user)
            Interaction.objects.filter(pk=old.pk).update(created_at=T0 - datetime.timedelta(1))
            added_old.append(old.pk)
            Interaction.objects.filter(pk=removed).delete()

    seen, _ = _walk(client_for(user), "/api/interactions", between=meanwhile)
    assert len(seen) == len(set(seen))
    assert seen == [pk for pk in before if pk != removed] + added_old


def test_offset_walks_repeat_rows_when_rows_are_added_cursors_do_not(client_for, user):
    _history(user, 8)
    client = client_for(user)
    first = client.get("/api/interactions?limit=4").json()
    InteractionFactory(user=user)  # a new newest row pushes the rows down by one
    by_offset = client.get("/api/interactions?limit=4&offset=4").json()["results"]
    by_cursor = client.get(first["next"]).json()["results"]
    first_ids = {row["id"] for row in first["results"]}
    assert first_ids & {row["id"] for row in by_offset}  # the old way shows a row twice
    assert not first_ids & {row["id"] for row in by_cursor}


def test_previous_goes_back_to_the_same_rows(client_for, user):
    _history(user, 13)
    client = client_for(user)
    first = client.get("/api/interactions?limit=4").json()
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    back = client.get(third["previous"]).json()
    assert back["results"] == second["results"] and back["count"] == 13
    again = client.get(back["previous"]).json()
    assert again["results"] == first["results"] and again["previous"] is None
    assert first["previous"] is None and "offset" not in first["next"]


def test_offsets_still_page_as_before_shallow_and_deep(client_for, user, monkeypatch):
    _history(user, 12)
    expected = _expected(user)
    client = client_for(user)
    page = client.get("/api/interactions?limit=5&offset=5").json()
    assert [r["id"] for r in page["results"]] == expected[5:10] and page["count"] == 12
    assert "offset=5" not in page["previous"]  # back to the start: DRF's offset link
    monkeypatch.setattr(pagination, "DEFERRED_OFFSET", 3)  # ids first, then their rows
    for offset in (3, 7, 11, 12, 40):
        rows = client.get(f"/api/interactions?limit=5&offset={offset}").json()["results"]
        assert [r["id"] for r in rows] == expected[offset : offset + 5]


def test_filters_combine_with_cursors(client_for, user, other_user):
    _history(user, 9, source="news")
    _history(user, 7, source="email")
    _history(other_user, 5, source="news")
    client = client_for(user)
    after = (T0 + datetime.timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    url = f"/api/interactions?source=news&created_after={after}"
    seen, _ = _walk(client, url, limit=2)
    since = T0 + datetime.timedelta(minutes=2)
    assert seen == _expected(user, source="news", created_at__gte=since)
    assert len(seen) == 7  # minutes 2-6 of news, three of them at minute 6


def test_feedback_lists_filter_through_the_interaction_with_cursors(client_for, user):
    news, email = _history(user, 5, source="news"), _history(user, 4, source="email")
    for row in news + email:
        RatingFactory(interaction=row)
        EditFactory(interaction=row)
    client = client_for(user)
    for kind in ("ratings", "edits"):
        seen, _ = _walk(client, f"/api/{kind}?source=email", limit=3)
        expected = {row.pk for row in email}
        assert len(seen) == 4 and len(set(seen)) == 4, kind
        rows = [client.get(f"/api/{kind}/{pk}").json()["interaction"] for pk in seen]
        assert set(rows) == expected, kind


def test_staff_walk_one_users_list_with_a_cursor(client_for, user, other_user, staff_user):
    _history(user, 5)
    _history(other_user, 6)
    seen, _ = _walk(client_for(staff_user), f"/api/interactions?user_id={other_user.pk}", 4)
    assert seen == _expected(other_user)


def _token(raw: object) -> str:
    text = raw if isinstance(raw, str) else json.dumps(raw)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        _token("not json"),
        _token({"p": [], "r": 0}),  # too few values
        _token({"p": ["2025-01-01T00:00:00", 1], "r": 0}),  # a time without its offset
        _token({"p": ["2025-01-01T00:00:00Z", 2**70], "r": 0}),  # an id beyond bigint
        _token({"p": ["9999-12-31T23:00:00-15:00", 1], "r": 0}),  # past year 9999 in UTC
        _token({"p": ["2025-01-01T00:00:00Z", "1\u0000"], "r": 0}),  # a NUL character
        _token({"p": ["2025-01-01T00:00:00Z", 1], "r": 2}),  # a direction that is not one
        _token({"p": [True, 1], "r": 0}),
    ],
)
def test_a_cursor_that_is_not_one_answers_400(client_for, user, cursor):
    _history(user, 3)
    response = client_for(user).get(f"/api/interactions?cursor={cursor}")
    assert response.status_code == 400 and "cursor" in response.json()


def test_a_cursor_and_an_offset_together_answer_400(client_for, user):
    _history(user, 6)
    client = client_for(user)
    link = client.get("/api/interactions?limit=2").json()["next"]
    response = client.get(link + "&offset=2")
    assert response.status_code == 400 and "offset" in response.json()


def test_a_list_that_cannot_seek_pages_by_offset_and_refuses_a_cursor(client_for, user):
    client = client_for(user)
    assert client.get("/api/collab/embeddings?offset=0").status_code == 200
    cursor = _token({"p": [1], "r": 0})
    assert client.get(f"/api/collab/embeddings?cursor={cursor}").status_code == 400


def test_the_schema_describes_cursor_limit_and_offset(api_client, user):
    api_client.force_authenticate(user)
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    for path in ("/api/interactions", "/api/ratings", "/api/memory", "/api/comparisons"):
        names = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
        assert {"cursor", "limit", "offset"} <= names, path


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200, url
    return len(captured.captured_queries)


LISTS = ["/api/interactions", "/api/ratings", "/api/edits", "/api/comparisons", "/api/memory"]


def test_a_list_pages_queries_do_not_grow_with_history(
    client_for, user, django_assert_max_num_queries
):
    def grow(count: int) -> None:
        for row in _history(user, count):
            RatingFactory(interaction=row)
            EditFactory(interaction=row)
            ComparisonFactory(user=user, interaction_a=row)
            MemoryEntry.objects.create(
                user=user, context_text=row.prompt, preference="brief", origin="user"
            )

    client = client_for(user)
    grow(3)
    for url in LISTS:  # warm: the first request of a key does a little more
        client.get(url)
    small = {url: _queries(client, f"{url}?limit=2") for url in LISTS}
    grow(40)
    for url in LISTS:
        first = client.get(f"{url}?limit=2").json()
        with django_assert_max_num_queries(small[url]):
            client.get(first["next"])
        with django_assert_max_num_queries(small[url]):
            client.get(f"{url}?limit=2&offset=30")
        assert _queries(client, f"{url}?limit=50") <= small[url], url
