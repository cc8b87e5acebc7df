"""Lists and pages of a user with 50,000 interactions: p50 / p99 per endpoint, and the plans.

A measurement, not part of the suite (it fills ~75,000 rows and takes minutes; pytest collects
this file only when it is named, as below). It prints a table (sequential, then concurrency 4)
and the plans of the deep pages, and asserts issue 15's target, p99 < 200 ms for every list and
page::

    PYTHONPATH=.:platform .venv/bin/python -m pytest -q -s -p no:cacheprovider \
        tests/apps/common/lists_at_size.py

``ATTUNE_SIZE_INTERACTIONS`` changes the history's length (default 50000),
``ATTUNE_SIZE_REQUESTS`` the requests per endpoint and mode (default 40).
"""

from __future__ import annotations

import os
import re

import pytest
from django.db import connection
from django.test import Client

from tests.apps.common.size import Timing, fill_history, timing
from tests.support.factories import UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(1800),
]

SIZE = int(os.environ.get("ATTUNE_SIZE_INTERACTIONS", "50000"))
HNSW = ["fb_interaction_emb_hnsw", "fb_comparison_emb_hnsw"]  # lists never use them; slow to fill
REQUESTS = int(os.environ.get("ATTUNE_SIZE_REQUESTS", "40"))
TARGET_P99_MS = 200.0


@pytest.fixture
def heavy(transactional_db):
    """A user with ``SIZE`` interactions and their feedback, and three lighter users."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = ANY(%s)", [HNSW])
        definitions = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"DROP INDEX {', '.join(HNSW)}")
    try:
        for _ in range(3):
            fill_history(UserFactory().pk, 300)
        person = UserFactory()
        person.save()  # the factory sets the password on the instance only; a session checks it
        fill_history(person.pk, SIZE)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        yield person
    finally:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE feedback_interaction, feedback_comparison CASCADE")
            for definition in definitions:
                cursor.execute(definition)


def _api(user) -> Client:
    from apps.accounts.services import issue_personal_token

    key = issue_personal_token(user, "bench").key
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


def _web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _next_of(client: Client, url: str) -> str:
    """The ``next`` link of a list page, as a path."""
    link = client.get(url).json()["next"]
    return re.sub(r"^https?://[^/]+", "", link)


def _explain(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_every_list_and_page_answers_within_the_target(heavy):
    api, web = _api(heavy), _web(heavy)
    newest = heavy.feedback_interaction_set.order_by("-created_at", "-id").first()
    deep = SIZE * 4 // 5
    cases: dict[str, tuple[Client, str]] = {
        "interactions": (api, "/api/interactions"),
        "interactions limit=500": (api, "/api/interactions?limit=500"),
        "interactions source": (api, "/api/interactions?source=news"),
        "interactions dates": (
            api,
            "/api/interactions?created_after=2025-01-10T00:00:00Z"
            "&created_before=2025-01-20T00:00:00Z",
        ),
        f"interactions offset={deep}": (api, f"/api/interactions?offset={deep}"),
        "ratings": (api, "/api/ratings"),
        "ratings source": (api, "/api/ratings?source=news"),
        f"ratings offset={deep * 3 // 10}": (api, f"/api/ratings?offset={deep * 3 // 10}"),
        "edits": (api, "/api/edits"),
        f"edits offset={deep // 10}": (api, f"/api/edits?offset={deep // 10}"),
        "comparisons": (api, "/api/comparisons"),
        f"comparisons offset={deep // 20}": (api, f"/api/comparisons?offset={deep // 20}"),
        "memory": (api, "/api/memory"),
        f"memory offset={deep // 10}": (api, f"/api/memory?offset={deep // 10}"),
        "web /me": (web, "/me"),
        "web /history": (web, "/history"),
        "web /ask": (web, "/ask"),
        "web /next": (web, "/next"),
        "web /i/<id>": (web, f"/i/{newest.pk}"),
        "web /my-data": (web, "/my-data"),
    }
    for name, path in [
        ("interactions", f"/api/interactions?offset={deep - 50}"),
        ("ratings", f"/api/ratings?offset={deep * 3 // 10 - 50}"),
        ("memory", f"/api/memory?offset={deep // 10 - 50}"),
    ]:
        next_link = _next_of(api, path)
        if "cursor=" in next_link:
            cases[f"{name} deep cursor"] = (api, next_link)
    history = web.get("/history").content.decode()
    if older := re.search(r'href="(\?page=[^"]+)" rel="next"', history):
        cases["web /history older"] = (web, "/history" + older.group(1).replace("&amp;", "&"))
    else:
        cases["web /history deep page"] = (web, f"/history?page={deep // 20}")

    def getter(client: Client, path: str, follow: bool):
        def get() -> tuple[int, int]:
            response = client.get(path, follow=follow)
            return response.status_code, len(response.content)

        return get

    results: dict[str, tuple[Timing, Timing]] = {}
    for name, (client, path) in cases.items():
        follow = path == "/next"
        sequential = timing(getter(client, path, follow), requests=REQUESTS)
        concurrent = timing(getter(client, path, follow), requests=REQUESTS, concurrency=4)
        results[name] = (sequential, concurrent)
        print(f"{name:32} seq {sequential}   c4 {concurrent}")

    print(
        _explain(
            "SELECT id FROM feedback_interaction WHERE user_id = %s "
            "ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 50",
            [heavy.pk, deep],
        )
    )
    at = heavy.feedback_interaction_set.order_by("-created_at", "-id")[deep]
    print(
        _explain(
            "SELECT * FROM feedback_interaction WHERE user_id = %s AND created_at <= %s AND "
            "(created_at < %s OR (created_at = %s AND id < %s)) "
            "ORDER BY created_at DESC, id DESC LIMIT 51",
            [heavy.pk, at.created_at, at.created_at, at.created_at, at.pk],
        )
    )
    for sql in (
        "SELECT count(*) FROM feedback_interaction WHERE user_id = %s",
        "SELECT count(*) FROM feedback_rating r JOIN feedback_interaction i "
        "ON i.id = r.interaction_id WHERE r.user_id = %s AND i.source = 'news'",
    ):
        print(_explain(sql, [heavy.pk]))
    slow = {name: r for name, r in results.items() if r[1].p99_ms >= TARGET_P99_MS}
    assert not slow, slow
