"""Each console page reads a bounded number of rows: its number of queries does not grow with the
number of users or with a user's history."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.adapters.models import FitJob
from apps.collab.models import CollabModelVersion, UserEmbedding
from apps.memory.models import MemoryEntry
from tests.support.factories import EditFactory, InteractionFactory, RatingFactory, UserFactory

pytestmark = pytest.mark.django_db


def grow(person, n: int) -> None:
    """``n`` more interactions of ``person``, each rated and edited, with a memory entry."""
    for _ in range(n):
        interaction = InteractionFactory(user=person)
        RatingFactory(interaction=interaction)
        made = EditFactory(interaction=interaction)
        MemoryEntry.objects.create(
            user=person, context_text="c", preference="p", origin="inferred", edit=made
        )


def more_users(n: int, version: CollabModelVersion) -> None:
    dims = UserEmbedding._meta.get_field("vector").dimensions
    for i in range(n):
        other = UserFactory()
        grow(other, 1)
        FitJob.objects.create(user=other, status="succeeded")
        vector = [0.0] * dims
        vector[i % dims] = 1.0
        UserEmbedding.objects.create(user=other, version=version, expert=i % 2, vector=vector)


def pages(heavy) -> list[str]:
    return [
        "/console/", "/console/?q=user", "/console/?page=2", f"/console/users/{heavy.pk}",
        "/console/plots", "/console/jobs", "/console/jobs.json", "/console/audit",
    ]  # fmt: skip


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as seen:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(seen)


def test_queries_do_not_grow_with_users_or_history(staff, django_assert_max_num_queries):
    version = CollabModelVersion.objects.create(version=1, status="active", progress=1.0)
    heavy = UserFactory()
    grow(heavy, 3)
    more_users(3, version)
    before = {url: queries(staff, url) for url in pages(heavy)}
    grow(heavy, 40)  # a longer history than any page shows (30 texts, and so on)
    more_users(60, version)  # more users than a page of 50
    for url, n in before.items():
        with django_assert_max_num_queries(n, info=url):
            staff.get(url)


def test_the_users_list_and_the_plots_read_no_feedback_rows(staff, user):
    """Counts and rounds come from the counters and rounds tables, never from a scan of
    interactions, ratings, edits, comparisons or memory."""
    grow(user, 2)
    for url in ["/console/", "/console/?q=user", "/console/plots"]:
        with CaptureQueriesContext(connection) as seen:
            assert staff.get(url).status_code == 200
        read = " ".join(q["sql"] for q in seen.captured_queries)
        assert "feedback_" not in read and "memory_memoryentry" not in read, url
