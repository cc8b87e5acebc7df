"""The fit trigger's check after every edit and comparison: the same decision as counting every
new pair, at a cost that does not grow with the user's history."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from apps.adapters import selectors, services
from apps.adapters.models import FitJob
from apps.feedback import selectors as feedback
from apps.feedback.models import Comparison, Edit, Interaction
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db

PROSE = "A long paragraph of prose about the plan."


def add_history(user: User, pairs: int, noops: int = 0, ties: int = 0) -> None:
    """Edits (``pairs`` that change the text, ``noops`` that do not) and comparisons (``pairs``
    decided ones, ``ties`` ties and as many decided ones of two equal texts: no pair either)."""
    made = Interaction.objects.bulk_create(
        Interaction(user=user, prompt=f"Summarize note {i}.", output=PROSE)
        for i in range(pairs + noops)
    )
    Edit.objects.bulk_create(
        Edit(user=user, interaction=ia, original=PROSE, edited=PROSE, distance=0, diff=[])
        if i >= pairs
        else Edit(user=user, interaction=ia, original=PROSE, edited="- short", distance=8, diff=[])
        for i, ia in enumerate(made)
    )
    comparisons = [
        Comparison(user=user, prompt="Greet.", response_a="Hi!", response_b="Hello.", choice="a")
        for _ in range(pairs)
    ]
    for _ in range(ties):
        comparisons += [
            Comparison(user=user, prompt="Greet.", response_a="Hi!", response_b="Yo", choice="tie"),
            Comparison(user=user, prompt="Greet.", response_a="Hi!", response_b="Hi!", choice="b"),
        ]
    Comparison.objects.bulk_create(comparisons)


def counted_before(user: User) -> bool:
    """The check as it was: every new pair of the user counted."""
    after = selectors.last_fit_cutoffs(user)
    new_pairs = feedback.pair_count(user=user, after=after, with_ratings=False)
    return new_pairs >= settings.ATTUNE_FIT_TRIGGER_PAIRS and selectors.open_job(user) is None


def one_new_pair(user: User, kind: str) -> None:
    if kind == "edit":
        add_history(user, 0, noops=1)  # a no-op on the way: it counts for nothing
        ia = Interaction.objects.create(user=user, prompt="Summarize.", output=PROSE)
        Edit.objects.create(user=user, interaction=ia, original=PROSE, edited="- ok", distance=8)
    else:
        add_history(user, 0, ties=1)
        Comparison.objects.create(
            user=user, prompt="Greet.", response_a="Hi!", response_b="Hello.", choice="b"
        )


def fit_job(user: User, status: str) -> FitJob:
    cutoffs = feedback.current_cutoffs(user)
    return FitJob.objects.create(
        user=user,
        status=status,
        edit_cutoff=cutoffs.edit,
        comparison_cutoff=cutoffs.comparison,
        rating_cutoff=cutoffs.rating,
    )


def test_the_check_flips_exactly_at_the_threshold_as_before(user, settings):
    settings.ATTUNE_FIT_TRIGGER_PAIRS = 5
    steps = []
    for i in range(7):  # before any fit: edits and comparisons alike, ties and no-ops between
        steps.append((services.fit_due(user), counted_before(user)))
        one_new_pair(user, "edit" if i % 2 else "comparison")
    assert steps == [(False, False)] * 5 + [(True, True)] * 2

    job = fit_job(user, FitJob.Status.QUEUED)
    assert services.fit_due(user) is counted_before(user) is False  # a fit is queued
    FitJob.objects.filter(pk=job.pk).update(status=FitJob.Status.SUCCEEDED)
    steps = []
    for i in range(6):  # only the pairs after that fit's cutoffs count
        steps.append((services.fit_due(user), counted_before(user)))
        one_new_pair(user, "comparison" if i % 2 else "edit")
    assert steps == [(False, False)] * 5 + [(True, True)]

    fit_job(user, FitJob.Status.FAILED)  # a failed fit moves no cutoff
    assert services.fit_due(user) is counted_before(user) is True
    fit_job(user, FitJob.Status.RUNNING)
    assert services.fit_due(user) is counted_before(user) is False


def test_new_pair_count_stops_at_its_limit_and_is_exact_below_it(user):
    add_history(user, 3, noops=4, ties=4)  # 3 edit pairs and 3 comparison pairs
    assert feedback.pair_count(user=user, with_ratings=False) == 6
    assert [feedback.new_pair_count(user, None, n) for n in (0, 1, 2, 3, 4, 6, 7, 50)] == [
        0, 1, 2, 3, 4, 6, 6, 6,
    ]  # fmt: skip
    after = feedback.current_cutoffs(user)
    assert feedback.new_pair_count(user, after, 16) == 0
    assert feedback.new_pair_count(UserFactory(), None, 16) == 0


def rows_read(sql: str) -> tuple[int, set[str]]:
    """The rows the plan of ``sql`` read (returned or filtered out by every scan) and the indexes
    it used, from EXPLAIN ANALYZE."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    rows, indexes, nodes = 0, set(), [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if "Scan" in node["Node Type"]:  # rows an index or heap scan visited
            rows += node["Actual Rows"] * node.get("Actual Loops", 1)
            rows += node.get("Rows Removed by Filter", 0)
            rows += node.get("Rows Removed by Index Recheck", 0)
        if "Index Name" in node:
            indexes.add(node["Index Name"])
    return rows, indexes


def settle() -> None:
    """VACUUM (ANALYZE) the pair tables, as autovacuum keeps a filled database: statistics, and
    a visibility map that makes index-only scans what they are (the plans are then the ones a
    large table gets; sequential scans are off, these tables being tiny)."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) feedback_edit, feedback_comparison")


def check_reads(user: User) -> tuple[int, int, set[str]]:
    """(queries, rows read, indexes used) of one fit check."""
    with CaptureQueriesContext(connection) as queries:
        services.fit_due(user)
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            reads = [
                rows_read(q["sql"]) for q in queries.captured_queries if "feedback_" in q["sql"]
            ]
        finally:
            cursor.execute("RESET enable_seqscan")
    return len(queries), sum(r for r, _ in reads), set().union(*(i for _, i in reads))


def others_write(others: list[User]) -> None:
    """Everyone else's feedback meanwhile (so that the planner sees a table of many users)."""
    for other in others:
        add_history(other, 10, noops=10, ties=5)


@pytest.mark.django_db(transaction=True)  # VACUUM runs outside a transaction
@pytest.mark.parametrize("fitted", [False, True], ids=["never-fitted", "fitted-before"])
def test_the_check_reads_the_same_few_rows_whatever_the_history(fitted, settings):
    settings.ATTUNE_FIT_TRIGGER_PAIRS = 5
    others = UserFactory.create_batch(20)
    found = []
    for history in (5, 400):
        user = UserFactory()
        add_history(user, history, noops=history, ties=history)
        others_write(others)
        if fitted:
            fit_job(user, FitJob.Status.SUCCEEDED)
            others_write(others)
            add_history(user, 2, noops=history, ties=history)  # 4 new pairs: one too few
        assert services.fit_due(user) is counted_before(user) is (not fitted)
        settle()
        found.append(check_reads(user))
    (few_queries, few_rows, indexes), (many_queries, many_rows, _) = found
    assert few_queries == many_queries
    assert many_rows == few_rows <= 2 * settings.ATTUNE_FIT_TRIGGER_PAIRS
    # never fitted: the newest 5 edit pairs answer; fitted: 2 edit pairs, then the comparisons
    both = {"fb_edit_user_pair", "fb_comparison_user_pair"}
    assert indexes == (both if fitted else {"fb_edit_user_pair"})


def test_the_old_count_read_the_whole_history(settings):
    """The measure above can see a history-sized read: counting every pair reads them all."""
    user = UserFactory()
    add_history(user, 400, noops=400, ties=400)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    with CaptureQueriesContext(connection) as queries:
        feedback.pair_count(user=user, with_ratings=False)
    assert sum(rows_read(q["sql"])[0] for q in queries.captured_queries) >= 800


def post_edit(client, user: User) -> int:
    ia = Interaction.objects.create(user=user, prompt="Summarize.", output=PROSE)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            "/api/edits", {"interaction": ia.pk, "edited": "- short"}, format="json"
        )
    assert response.status_code == 201, response.json()
    return len(queries)


def post_comparison(client, user: User) -> int:
    body = {"prompt": "Greet.", "response_a": "Hi!", "response_b": "Hello.", "choice": "a"}
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/api/comparisons", body, format="json")
    assert response.status_code == 201, response.json()
    return len(queries)


@pytest.mark.parametrize("post", [post_edit, post_comparison], ids=["edit", "comparison"])
def test_a_write_makes_as_many_queries_with_a_long_history(client_for, post, monkeypatch):
    monkeypatch.setattr("apps.feedback.services.schedule_embedding", lambda model: None)
    counts = []
    for history in (3, 300):
        user = UserFactory()
        add_history(user, history, noops=history, ties=history)
        fit_job(user, FitJob.Status.SUCCEEDED)
        client = client_for(user)
        post(client, user)  # the first write creates the user's evidence row
        counts.append(post(client, user))
    assert counts[0] == counts[1]
