"""``GET`` and ``DELETE /api/my-data`` of a user with 50,000 interactions: the figures of issue 15.

A measurement, not part of the suite (it fills ~80,000 rows and takes minutes; pytest collects
this file only when it is named, as below, like ``tests/apps/common/lists_at_size.py``). It
prints the export's first byte and MB/s, the erasure's wall time, and the p50 / p99 of another
user's rating writes alone and during the erasure (one thread, in this process, through
``feedback.services.rate``); it asserts correctness only (every line, every row gone, the other
users untouched)::

    PYTHONPATH=.:platform .venv/bin/python -m pytest -q -s -p no:cacheprovider \
        tests/apps/privacy/at_size.py

``ATTUNE_SIZE_INTERACTIONS`` changes the history's length (default 50000).
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time

import pytest
from django.db import connection, connections

from apps.feedback.models import Rating
from apps.feedback.services import rate
from tests.apps.common.size import fill_history, percentile
from tests.apps.privacy.support import fill_everything, rows_of, table_sizes
from tests.support.factories import UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(1800),
]

SIZE = int(os.environ.get("ATTUNE_SIZE_INTERACTIONS", "50000"))
HNSW = ["fb_interaction_emb_hnsw", "fb_comparison_emb_hnsw"]  # nothing here uses them; slow to fill


@pytest.fixture
def people(transactional_db):
    """The heavy user (``SIZE`` interactions and one or more rows of every kind), three lighter
    users, and a writer with 200 interactions to rate."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = ANY(%s)", [HNSW])
        definitions = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"DROP INDEX {', '.join(HNSW)}")
    try:
        began = time.perf_counter()
        others = [UserFactory() for _ in range(3)]
        for other in others:
            fill_history(other.pk, 300)
        heavy = UserFactory()
        fill_everything(heavy, SIZE)
        writer = UserFactory()
        fill_history(writer.pk, 200)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        print(f"\nfill: {time.perf_counter() - began:.1f} s")
        yield heavy, writer, others
    finally:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE feedback_interaction, feedback_comparison CASCADE")
            for definition in definitions:
                cursor.execute(definition)


def _client(user):
    from rest_framework.test import APIClient

    from apps.accounts.services import issue_personal_token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_personal_token(user, 'bench').key}")
    return client


class Writer(threading.Thread):
    """Rates the writer's interactions in a loop until stopped; keeps each call's milliseconds."""

    def __init__(self, user) -> None:
        super().__init__()
        self.user, self.times, self.stop = user, [], threading.Event()
        rated = Rating.objects.filter(user=user).values_list("interaction_id", flat=True)
        self.ids = list(rated)  # already rated: each call replaces a rating, the counts stay

    def run(self) -> None:
        try:
            n = 0
            while not self.stop.is_set():
                began = time.perf_counter()
                rate(self.user, self.ids[n % len(self.ids)], stars=1 + n % 5)
                self.times.append((time.perf_counter() - began) * 1000)
                n += 1
                time.sleep(0.01)
        finally:
            connections.close_all()

    def figures(self) -> str:
        t = self.times
        return f"p50 {statistics.median(t):6.1f} ms  p99 {percentile(t, 0.99):6.1f} ms  n={len(t)}"


def test_export_and_erase_the_heaviest_user(people):
    heavy, writer, others = people
    client = _client(heavy)
    b"".join(_client(others[0]).get("/api/my-data").streaming_content)  # warm: URLs, views
    owned = rows_of(heavy)
    print(f"heavy user: {sum(owned.values())} rows {owned}")

    began = time.perf_counter()
    response = client.get("/api/my-data")
    chunks = iter(response.streaming_content)
    first = next(chunks)
    first_byte = time.perf_counter() - began
    body = first + b"".join(chunks)
    took = time.perf_counter() - began
    print(
        f"GET /api/my-data: first byte {first_byte * 1000:.0f} ms, {len(body) / 1e6:.1f} MB in "
        f"{took:.2f} s = {len(body) / 1e6 / took:.1f} MB/s"
    )
    lines = [json.loads(line) for line in body.splitlines()]
    assert len(lines) == 1 + sum(owned.values())
    assert all(line["fields"]["user_id"] == heavy.pk for line in lines[1:])

    alone = Writer(writer)
    alone.start()
    time.sleep(3)
    alone.stop.set()
    alone.join()
    kept = {user.pk: rows_of(user) for user in [writer, *others]}
    sizes = table_sizes()

    during = Writer(writer)
    during.start()
    began = time.perf_counter()
    erased = client.delete("/api/my-data")
    took = time.perf_counter() - began
    during.stop.set()
    during.join()
    print(f"DELETE /api/my-data: {took:.2f} s, {sum(erased.json()['deleted'].values())} rows")
    print(f"another user's rating writes alone:  {alone.figures()}")
    print(f"                     during DELETE:  {during.figures()}")

    assert erased.status_code == 200
    expected = {**owned, "memory.PendingInference": 3}  # pending: not owned, cascaded from edits
    assert erased.json()["deleted"] == expected
    assert rows_of(heavy) == {}
    assert {user.pk: rows_of(user) for user in [writer, *others]} == kept
    assert sum(sizes.values()) - sum(table_sizes().values()) == sum(expected.values())
