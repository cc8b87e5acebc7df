"""Reads of the admin console: users with counts, one user's data, jobs, and edit cost per round.

A **round** is one interaction that the user edited (a no-op edit means "accepted as it was",
cost 0), in the order the interactions were made; its **cost** is the word-level Levenshtein
distance of the interaction's latest edit, as in the CIPHER/PRELUDE protocol.

Nothing here scans a table to count: the counts and rounds come from
:class:`~apps.console.models.UserCounters` and :class:`~apps.console.models.EditRound`, which
database triggers keep current, and every per-user read is bounded (a page, a limit).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import (
    BooleanField,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)

from apps.accounts.models import User
from apps.adapters.models import AdapterVersion, FitJob
from apps.console.models import EditRound, UserCounters
from apps.feedback.models import Edit, Interaction, Rating
from apps.memory.models import MemoryEntry

COUNTERS = [
    "n_interactions", "n_ratings", "n_edits", "n_comparisons", "n_memory", "n_adapters", "n_rounds"
]  # fmt: skip
MAX_ROUNDS = 500
USERS_PAGE = 50
REFRESH_EVERY = 30  # seconds: the beat schedule's refresh of the overall edit-cost series
OVERALL_TTL = 2 * REFRESH_EVERY  # … a page asks for a refresh itself when it is this old
STALE_AFTER = 600  # … and after which a page computes it itself
KEPT_FOR = 24 * 3600
_HEAVY = ["embedding", "messages", "memory_entry_ids", "preference_coefficients"]


def users_with_counts() -> QuerySet[User]:
    """Users with how many interactions, ratings, edits, … they have and their active adapter
    version; busiest first (then the oldest account)."""
    active = AdapterVersion.objects.filter(user=OuterRef("pk"), status="active").values("version")
    return (
        User.objects.filter(counters__isnull=False)
        .annotate(
            **{name: F(f"counters__{name}") for name in COUNTERS},
            active_adapter=Subquery(active[:1]),
        )
        .order_by("-n_interactions", "pk")
    )


def matching(search: str) -> QuerySet[User]:
    """Users whose username, e-mail or external id contains ``search`` (any case); the trigram
    indexes of ``migrations/0002_user_search`` serve it."""
    return User.objects.filter(
        Q(username__icontains=search) | Q(email__icontains=search)
        | Q(external_id__icontains=search)
    )  # fmt: skip


def users_page(search: str = "", number: object = None, per_page: int = USERS_PAGE) -> Page:
    """One page of :func:`users_with_counts` (of the users matching ``search``, if given). The
    page is cut from the ``console_busiest`` index (an index-only scan, however deep the page);
    only its users are then read."""
    order = UserCounters.objects.order_by("-n_interactions", "user_id")
    if search:
        order = order.filter(user_id__in=matching(search).values("pk"))
    page = Paginator(order.values_list("user_id", flat=True), per_page).get_page(number)
    wanted = list(page.object_list)
    found = {u.pk: u for u in users_with_counts().filter(pk__in=wanted)}
    page.object_list = [found[pk] for pk in wanted if pk in found]
    return page


def user(pk: int) -> User | None:
    return users_with_counts().filter(pk=pk).first()


def memory_entries(user: User, limit: int = 200) -> list[MemoryEntry]:
    """The user's newest entries (without their vectors; ``embedded`` says whether there is one)."""
    rows = MemoryEntry.objects.filter(user=user).defer("embedding", "embedding_bits")
    embedded = ExpressionWrapper(Q(embedding__isnull=False), output_field=BooleanField())
    return list(rows.annotate(embedded=embedded)[:limit])


def interactions_with_edits(user: User, limit: int = 30) -> list[Interaction]:
    """The user's latest interactions, each with its edits (newest first) and rating."""
    return list(
        Interaction.objects.filter(user=user)
        .defer(*_HEAVY)
        .prefetch_related(
            Prefetch("edits", queryset=Edit.objects.order_by("-created_at", "-id")),
            Prefetch("ratings", queryset=Rating.objects.all()),
        )
        .order_by("-created_at", "-id")[:limit]
    )


def adapter_versions(user: User, limit: int = 50) -> list[AdapterVersion]:
    """The user's newest adapter versions (the active one is always among them)."""
    return list(AdapterVersion.objects.filter(user=user).select_related("fit_job")[:limit])


def fit_jobs(user: User | None = None, limit: int = 50) -> list[FitJob]:
    """Open jobs first, then the most recent ones."""
    jobs = FitJob.objects.select_related("user")
    if user is not None:
        jobs = jobs.filter(user=user)
    open_first = jobs.filter(status__in=[FitJob.Status.QUEUED, FitJob.Status.RUNNING])
    recent = jobs.exclude(status__in=[FitJob.Status.QUEUED, FitJob.Status.RUNNING])
    return [*open_first.order_by("-id")[:limit], *recent.order_by("-id")[:limit]][:limit]


def job_state(job: FitJob) -> dict[str, object]:
    """What the jobs page shows of a job, for its live refresh."""
    return {
        "id": job.pk,
        "status": job.status,
        "progress": job.progress,
        "loss": job.loss,
        "attempts": job.attempts,
        "error": job.error,
        "is_open": job.is_open,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


@dataclass(frozen=True)
class RoundCost:
    round: int
    cost: float
    users: int = 1


# Each user's first rounds, read from the covering index (user_id, made_at, interaction_id)
# INCLUDE (cost): at most ``max`` rows a user, never the edits themselves.
_FIRST_ROUNDS = f"""
SELECT c.user_id, r.round, r.cost
FROM {{users}} AS c(user_id)
CROSS JOIN LATERAL (
    SELECT ROW_NUMBER() OVER (ORDER BY made_at, interaction_id) AS round, cost
    FROM (
        SELECT made_at, interaction_id, cost FROM {EditRound._meta.db_table}
        WHERE user_id = c.user_id ORDER BY made_at, interaction_id LIMIT %(max)s
    ) AS first
) AS r
"""


def _mean_cost_per_round(max_rounds: int) -> list[RoundCost]:
    editors = f"(SELECT user_id FROM {UserCounters._meta.db_table} WHERE n_rounds > 0)"
    sql = (
        "SELECT round, AVG(cost)::float, COUNT(*) FROM ("
        + _FIRST_ROUNDS.format(users=editors)
        + ") AS rounds GROUP BY round ORDER BY round"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"max": max_rounds})
        return [RoundCost(int(r), float(c), int(n)) for r, c, n in cursor.fetchall()]


def mean_cost_per_round(max_rounds: int = MAX_ROUNDS, *, fresh: bool = False) -> list[RoundCost]:
    """Over all users: the mean cost of each user's n-th round, and how many users had one.

    It reads every editor's first rounds (~80,000 rows at 10,000 users), so pages are served the
    last computed series, which the beat schedule refreshes every ``REFRESH_EVERY`` seconds; a
    page sends the refresh itself when the series is ``OVERALL_TTL`` old (no beat), and computes
    it when there is none or it is ``STALE_AFTER`` old (no worker either)."""
    key = f"console:mean-cost-per-round:{max_rounds}"
    found = None if fresh else cache.get(key)
    age = time.time() - found[0] if found is not None else None
    if age is None or age > STALE_AFTER:
        return refresh_mean_cost_per_round(max_rounds)
    if age > OVERALL_TTL and cache.add(f"{key}:refreshing", 1, OVERALL_TTL):
        from apps.console.tasks import refresh_cost_per_round

        refresh_cost_per_round.delay(max_rounds)
    return found[1]


def refresh_mean_cost_per_round(max_rounds: int = MAX_ROUNDS) -> list[RoundCost]:
    """Compute the overall series and keep it for :func:`mean_cost_per_round`."""
    rounds = _mean_cost_per_round(max_rounds)
    cache.set(f"console:mean-cost-per-round:{max_rounds}", (time.time(), rounds), KEPT_FOR)
    return rounds


def cost_per_round(user_ids: list[int], max_rounds: int = MAX_ROUNDS) -> dict[int, list[RoundCost]]:
    """Per user: the cost of each round, in order (the first ``max_rounds``)."""
    found: dict[int, list[RoundCost]] = defaultdict(list)
    if not user_ids:
        return {}
    sql = _FIRST_ROUNDS.format(users="unnest(%(ids)s::bigint[])") + " ORDER BY c.user_id, r.round"
    with connection.cursor() as cursor:
        cursor.execute(sql, {"max": max_rounds, "ids": list(user_ids)})
        for user_id, round_, cost in cursor.fetchall():
            found[int(user_id)].append(RoundCost(int(round_), float(cost)))
    return dict(found)


def busiest_editors(n: int = 8) -> list[User]:
    """The users with the most edited interactions (their lines are drawn on the overall plot);
    ``rounds`` is how many each has."""
    return list(
        User.objects.filter(counters__n_rounds__gt=0)
        .annotate(rounds=F("counters__n_rounds"))
        .order_by("-rounds", "pk")[:n]
    )
