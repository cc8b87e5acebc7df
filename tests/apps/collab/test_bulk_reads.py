"""A training run reads the feedback in bulk and stores its embeddings in one statement: the
number of statements does not grow with the number of users."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.collab import selectors, services
from apps.collab.models import CollabModelVersion, UserEmbedding
from tests.apps.collab.conftest import make_world
from tests.support.factories import ComparisonFactory, UserFactory
from workers.collab.jobs import run_training

pytestmark = pytest.mark.django_db


def statements_of_a_run() -> tuple[CollabModelVersion, list[str]]:
    run, created = services.request_training(enqueue=False)
    assert created
    with CaptureQueriesContext(connection) as queries:
        run_training(run.pk)
    run.refresh_from_db()
    assert run.status == CollabModelVersion.Status.ACTIVE
    return run, [q["sql"] for q in queries.captured_queries]


def reads(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]


@pytest.mark.slow
def test_a_runs_reads_and_writes_do_not_grow_with_the_users(copl_settings):
    make_world(n_users=8, seed=0)
    small, small_sql = statements_of_a_run()
    make_world(n_users=40, seed=1)
    large, large_sql = statements_of_a_run()

    assert large.n_users >= 4 * small.n_users and large.n_pairs >= 4 * small.n_pairs
    assert len(reads(large_sql)) == len(reads(small_sql)) <= 12, reads(large_sql)
    stored = [s for s in large_sql if re.match(r'INSERT INTO "?collab_userembedding\b', s)]
    assert len(stored) == 1  # every user's embedding in one statement
    assert UserEmbedding.objects.filter(version=large).count() == large.n_users
    # everything the run reported stays bounded too (progress is reported at most every 1%)
    assert len(large_sql) < 200


def test_embeddings_are_stored_exactly_and_deleted_users_left_out(copl_settings):
    kept, gone = UserFactory(), UserFactory()
    for user in (kept, gone):
        ComparisonFactory(user=user, choice="a")
    copl_settings.ATTUNE_COPL_MIN_PAIRS, copl_settings.ATTUNE_COPL_MIN_USERS = 2, 2
    run, _ = services.request_training(enqueue=False)
    lease = services.start_run(run.pk)
    vector = np.random.default_rng(0).standard_normal(64).astype(np.float32)
    vector /= np.linalg.norm(vector)
    rows = [
        services.EmbeddingRow(u.pk, vector.tolist(), e, 3) for u, e in ((kept, 2), (gone, None))
    ]
    gone.delete()
    services.record_result(lease, rows)
    row = UserEmbedding.objects.get(version=run)
    assert (row.user_id, row.expert, row.n_pairs) == (kept.pk, 2, 3)
    assert np.array_equal(np.asarray(row.vector, dtype=np.float32), vector)  # float32 exactly


def test_the_data_check_stops_reading_once_there_is_enough(copl_settings):
    for _ in range(5):
        user = UserFactory()
        for choice in ("a", "b", "a"):
            ComparisonFactory(user=user, choice=choice)
    assert selectors.data_summary() == selectors.DataSummary(15, 5)
    assert selectors.data_summary(enough=(4, 2)) == selectors.DataSummary(4, 2)
    assert selectors.data_summary(enough=(100, 2)) == selectors.DataSummary(15, 5)
