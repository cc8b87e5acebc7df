"""Reads of the admin console: users with counts, one user's data, jobs, and edit cost per round.

A **round** is one interaction that the user edited (a no-op edit means "accepted as it was",
cost 0), in the order the interactions were made; its **cost** is the word-level Levenshtein
distance of the interaction's latest edit, as in the CIPHER/PRELUDE protocol.

Nothing here scans a table to count: the counts and rounds come from
:class:`~apps.console.models.UserCounters` and :class:`~apps.console.models.EditRound`, which
database triggers keep current, and every per-user read is bounded (a page, a limit).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce

from apps.accounts.models import User
from apps.adapters.models import AdapterVersion, FitJob
from apps.console.models import EditRound, UserCounters
from apps.feedback.models import Edit, Interaction, Rating
from apps.memory.models import MemoryEntry

logger = logging.getLogger(__name__)
COUNTERS = [
    "n_interactions", "n_ratings", "n_edits", "n_comparisons", "n_memory", "n_adapters", "n_rounds"
]  # fmt: skip
MAX_ROUNDS = 500
EDITS_SHOWN = 5  # per text on a user's page, the newest; all of them are in the data export
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


@dataclass(frozen=True)
class ShownEdit:
    """What a user's page shows of an edit: its word diff, not the two texts."""

    pk: int
    interaction_id: int
    distance: int
    diff: list
    created_at: datetime


_NEWEST_EDITS = f"""
SELECT id, interaction_id, distance, diff, created_at FROM (
    SELECT id, interaction_id, distance, diff, created_at, ROW_NUMBER() OVER (
        PARTITION BY interaction_id ORDER BY created_at DESC, id DESC) AS newest
    FROM {Edit._meta.db_table} WHERE interaction_id = ANY(%(ids)s)
) AS edits WHERE newest <= %(shown)s ORDER BY interaction_id, newest
"""


def interactions_with_edits(
    user: User, limit: int = 30, edits_shown: int = EDITS_SHOWN
) -> list[Interaction]:
    """The user's latest interactions, each with its ``ratings``, its newest ``edits_shown``
    edits (``shown_edits``, newest first) and ``n_edits``, how many it has: a text saved over
    and over keeps every edit, and the page stays bounded all the same.

    Three queries, the edits read as plain rows (a window per text): Django's sliced prefetch
    cost more Python than the rows themselves on a heavy editor's page."""
    n_edits = (
        Edit.objects.filter(interaction=OuterRef("pk"))
        .order_by()
        .values("interaction")
        .annotate(n=Count("*"))
        .values("n")
    )
    found = list(
        Interaction.objects.filter(user=user)
        .defer(*_HEAVY)
        .annotate(n_edits=Coalesce(Subquery(n_edits), 0))
        .order_by("-created_at", "-id")[:limit]
    )
    ids = [i.pk for i in found]
    edits: dict[int, list[ShownEdit]] = defaultdict(list)
    ratings: dict[int, list[Rating]] = defaultdict(list)
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(_NEWEST_EDITS, {"ids": ids, "shown": edits_shown})
            for pk, interaction_id, distance, diff, created_at in cursor.fetchall():
                diff = json.loads(diff) if isinstance(diff, str) else diff  # Django reads text
                edits[interaction_id].append(
                    ShownEdit(pk, interaction_id, distance, diff, created_at)
                )
        for rating in Rating.objects.filter(interaction_id__in=ids).order_by("-created_at", "-id"):
            ratings[rating.interaction_id].append(rating)
    for interaction in found:
        interaction.shown_edits = edits.get(interaction.pk, [])
        interaction.shown_ratings = ratings.get(interaction.pk, [])
    return found


def adapter_versions(user: User, limit: int = 50) -> list[AdapterVersion]:
    """The user's newest adapter versions (the active one is always among them)."""
    return list(AdapterVersion.objects.filter(user=user).select_related("fit_job")[:limit])


_OPEN = [FitJob.Status.QUEUED, FitJob.Status.RUNNING]
# What the jobs tables and their live refresh show of a job (not its cutoffs, worker, task id).
_JOB_SHOWN = [
    "user_id", "user__username", "kind", "trigger", "status", "dimension", "progress", "loss",
    "attempts", "error", "created_at", "finished_at",
]  # fmt: skip


def fit_jobs(user: User | None = None, limit: int = 50) -> list[FitJob]:
    """Open jobs first, then the most recent ones: at most ``limit`` rows read (the finished
    ones only to fill what the open ones leave), with only the fields the tables show."""
    jobs = FitJob.objects.select_related("user").only(*_JOB_SHOWN)
    if user is not None:
        jobs = jobs.filter(user=user)
    found = list(jobs.filter(status__in=_OPEN).order_by("-id")[:limit])
    if len(found) < limit:
        found += jobs.exclude(status__in=_OPEN).order_by("-id")[: limit - len(found)]
    return found


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
    return mean_cost_per_round_stamped(max_rounds, fresh=fresh)[1]


def mean_cost_per_round_stamped(
    max_rounds: int = MAX_ROUNDS, *, fresh: bool = False
) -> tuple[float, list[RoundCost]]:
    """:func:`mean_cost_per_round` with when it was computed (what a drawing of it is keyed
    by)."""
    key = f"console:mean-cost-per-round:{max_rounds}"
    found = None if fresh else cache.get(key)
    age = time.time() - found[0] if found is not None else None
    if age is None or age > STALE_AFTER:
        return _refresh(max_rounds)
    if age > OVERALL_TTL and cache.add(f"{key}:refreshing", 1, OVERALL_TTL):
        _ask_for_refresh(max_rounds)
    return found


def _ask_for_refresh(max_rounds: int) -> None:
    """Send the refresh task without holding the page that noticed: a process's first send
    opens the broker connection (~100 ms, a page's whole budget). In eager mode (no broker)
    the task runs here, as eager mode means."""
    from apps.console.tasks import refresh_cost_per_round

    if refresh_cost_per_round.app.conf.task_always_eager:
        refresh_cost_per_round.delay(max_rounds)
        return
    threading.Thread(
        target=_send_refresh, args=(max_rounds,), name="console-refresh", daemon=True
    ).start()


def _send_refresh(max_rounds: int) -> None:
    from apps.console.tasks import refresh_cost_per_round

    try:
        refresh_cost_per_round.delay(max_rounds)
    except Exception:  # the broker is down: a page asks again once the mark expires
        logger.warning("console: could not send the edit-cost refresh", exc_info=True)


def refresh_mean_cost_per_round(max_rounds: int = MAX_ROUNDS) -> list[RoundCost]:
    """Compute the overall series and keep it for :func:`mean_cost_per_round`."""
    return _refresh(max_rounds)[1]


def _refresh(max_rounds: int) -> tuple[float, list[RoundCost]]:
    found = (time.time(), _mean_cost_per_round(max_rounds))
    cache.set(f"console:mean-cost-per-round:{max_rounds}", found, KEPT_FOR)
    return found


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
    ``rounds`` is how many each has, ``edits`` how many edits (a changed line changes either)."""
    return list(
        User.objects.filter(counters__n_rounds__gt=0)
        .annotate(rounds=F("counters__n_rounds"), edits=F("counters__n_edits"))
        .order_by("-rounds", "pk")[:n]
    )
