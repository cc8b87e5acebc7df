"""Reads of the admin console: users with counts, one user's data, jobs, and edit cost per round.

A **round** is one interaction that the user edited (a no-op edit means "accepted as it was",
cost 0), in the order the interactions were made; its **cost** is the word-level Levenshtein
distance of the interaction's latest edit, as in the CIPHER/PRELUDE protocol.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from apps.accounts.models import User
from apps.adapters.models import AdapterVersion, FitJob
from apps.feedback.models import Comparison, Edit, Interaction, Rating
from apps.memory.models import MemoryEntry

COUNTED = {
    "n_interactions": Interaction,
    "n_ratings": Rating,
    "n_edits": Edit,
    "n_comparisons": Comparison,
    "n_memory": MemoryEntry,
    "n_adapters": AdapterVersion,
}
MAX_ROUNDS = 500


def _count_of(model: type) -> Coalesce:
    rows = (
        model.objects.filter(user=OuterRef("pk"))
        .order_by()
        .values("user")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


def users_with_counts(search: str = "") -> QuerySet[User]:
    """Every user with how many interactions, ratings, edits, … they have; busiest first."""
    users = User.objects.all()
    if search:
        users = users.filter(
            Q(username__icontains=search) | Q(email__icontains=search)
            | Q(external_id__icontains=search)
        )  # fmt: skip
    active = AdapterVersion.objects.filter(user=OuterRef("pk"), status="active").values("version")
    return users.annotate(
        **{name: _count_of(model) for name, model in COUNTED.items()},
        active_adapter=Subquery(active[:1]),
    ).order_by("-n_interactions", "username")


def user(pk: int) -> User | None:
    return users_with_counts().filter(pk=pk).first()


def memory_entries(user: User, limit: int = 200) -> list[MemoryEntry]:
    return list(MemoryEntry.objects.filter(user=user).select_related("edit")[:limit])


def interactions_with_edits(user: User, limit: int = 30) -> list[Interaction]:
    """The user's latest interactions, each with its edits (newest first) and rating."""
    return list(
        Interaction.objects.filter(user=user)
        .prefetch_related(
            Prefetch("edits", queryset=Edit.objects.order_by("-created_at", "-id")),
            "ratings",
        )
        .order_by("-created_at", "-id")[:limit]
    )


def adapter_versions(user: User) -> list[AdapterVersion]:
    return list(AdapterVersion.objects.filter(user=user).select_related("fit_job"))


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


_ROUNDS = f"""
WITH latest AS (
    SELECT DISTINCT ON (e.interaction_id) e.user_id, e.interaction_id, e.distance,
           i.created_at AS made_at
    FROM {Edit._meta.db_table} e JOIN {Interaction._meta.db_table} i ON i.id = e.interaction_id
    WHERE %(user_id)s::bigint IS NULL OR e.user_id = %(user_id)s::bigint
    ORDER BY e.interaction_id, e.created_at DESC, e.id DESC
), rounds AS (
    SELECT user_id, distance,
           ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY made_at, interaction_id) AS round
    FROM latest
)
"""


@dataclass(frozen=True)
class RoundCost:
    round: int
    cost: float
    users: int = 1


def mean_cost_per_round(max_rounds: int = MAX_ROUNDS) -> list[RoundCost]:
    """Over all users: the mean cost of each user's n-th round, and how many users had one."""
    sql = _ROUNDS + (
        "SELECT round, AVG(distance)::float, COUNT(*) FROM rounds WHERE round <= %(max)s "
        "GROUP BY round ORDER BY round"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"user_id": None, "max": max_rounds})
        return [RoundCost(int(r), float(c), int(n)) for r, c, n in cursor.fetchall()]


def cost_per_round(user_ids: list[int], max_rounds: int = MAX_ROUNDS) -> dict[int, list[RoundCost]]:
    """Per user: the cost of each round, in order."""
    found: dict[int, list[RoundCost]] = defaultdict(list)
    sql = _ROUNDS + (
        "SELECT user_id, round, distance FROM rounds WHERE round <= %(max)s "
        "AND user_id = ANY(%(ids)s) ORDER BY user_id, round"
    )
    with connection.cursor() as cursor:
        only = user_ids[0] if len(user_ids) == 1 else None  # one user: scan only their edits
        cursor.execute(sql, {"user_id": only, "max": max_rounds, "ids": list(user_ids)})
        for user_id, round_, distance in cursor.fetchall():
            found[int(user_id)].append(RoundCost(int(round_), float(distance)))
    return dict(found)


def busiest_editors(n: int = 8) -> list[User]:
    """The users with the most edited interactions (their lines are drawn on the overall plot)."""
    return list(
        User.objects.annotate(rounds=Count("feedback_edit_set__interaction", distinct=True))
        .filter(rounds__gt=0)
        .order_by("-rounds", "pk")[:n]
    )
