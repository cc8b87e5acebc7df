"""Reads for adapters: a user's training data (pairs and thumbs), versions, jobs, coefficients.

Everything here is torch-free; the worker turns these rows into TRL datasets.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TypeVar

from django.db.models import QuerySet

from apps.accounts.models import User
from apps.adapters.models import AdapterVersion, FitJob, PreferenceCoefficient, PreferenceVector
from apps.feedback.models import Comparison, Edit, Rating
from apps.feedback.selectors import Cutoffs, kto_label, newest_feedback

HELDOUT_SHARE = 0.2


@dataclass(frozen=True)
class TrainingPair:
    key: str
    prompt: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class TrainingThumb:
    key: str
    prompt: str
    completion: str
    label: bool


def current_cutoffs(user: User) -> Cutoffs:
    return newest_feedback(user)


def _pair_querysets(user: User, after: Cutoffs | None, upto: Cutoffs | None):
    edits = Edit.objects.filter(user=user).exclude(distance=0)
    comparisons = Comparison.objects.filter(user=user).exclude(choice=Comparison.Choice.TIE)
    if after is not None:
        edits, comparisons = (
            edits.filter(id__gt=after.edit),
            comparisons.filter(id__gt=after.comparison),
        )
    if upto is not None:
        edits, comparisons = (
            edits.filter(id__lte=upto.edit),
            comparisons.filter(id__lte=upto.comparison),
        )
    return edits, comparisons


def pair_count(user: User, after: Cutoffs | None = None) -> int:
    """Preference pairs the user has given (edits that changed something, decided comparisons)."""
    edits, comparisons = _pair_querysets(user, after, None)
    return edits.count() + comparisons.count()


def training_pairs(user: User, upto: Cutoffs) -> list[TrainingPair]:
    edits, comparisons = _pair_querysets(user, None, upto)
    pairs = [
        TrainingPair(f"edit:{pk}", prompt, edited, original)
        for pk, prompt, edited, original in edits.order_by("id").values_list(
            "id", "interaction__prompt", "edited", "original"
        )
    ]
    for pk, prompt, a, b, choice in comparisons.order_by("id").values_list(
        "id", "prompt", "response_a", "response_b", "choice"
    ):
        chosen, rejected = (a, b) if choice == Comparison.Choice.A else (b, a)
        pairs.append(TrainingPair(f"comparison:{pk}", prompt, chosen, rejected))
    return pairs


def training_thumbs(user: User, upto: Cutoffs) -> list[TrainingThumb]:
    rows = (
        Rating.objects.filter(user=user, id__lte=upto.rating)
        .order_by("id")
        .values_list("id", "interaction__prompt", "interaction__output", "thumbs_up", "stars")
    )
    thumbs = []
    for pk, prompt, output, thumbs_up, stars in rows:
        label = kto_label(thumbs_up, stars)
        if label is not None:
            thumbs.append(TrainingThumb(f"rating:{pk}", prompt, output, label))
    return thumbs


T = TypeVar("T", "TrainingPair", "TrainingThumb")


def split_heldout(items: list[T]) -> tuple[list[T], list[T]]:
    """(train, held-out): a stable 20% of the items, chosen by a hash of their keys."""
    ranked = sorted(items, key=lambda item: hashlib.sha256(item.key.encode()).hexdigest())
    n_heldout = math.ceil(len(items) * HELDOUT_SHARE) if len(items) >= 2 else 0
    heldout = {item.key for item in ranked[:n_heldout]}
    return [i for i in items if i.key not in heldout], [i for i in items if i.key in heldout]


def active_version(user: User) -> AdapterVersion | None:
    return AdapterVersion.objects.filter(user=user, status=AdapterVersion.Status.ACTIVE).first()


def open_job(user: User, kind: str = FitJob.Kind.USER_ADAPTER) -> FitJob | None:
    return (
        FitJob.objects.filter(
            user=user, kind=kind, status__in=[FitJob.Status.QUEUED, FitJob.Status.RUNNING]
        )
        .order_by("-id")
        .first()
    )


def last_fit_cutoffs(user: User) -> Cutoffs | None:
    """The data cutoffs of the user's latest adapter fit (whatever its outcome), if any."""
    job = (
        FitJob.objects.filter(user=user, kind=FitJob.Kind.USER_ADAPTER)
        .exclude(status=FitJob.Status.FAILED)
        .order_by("-id")
        .first()
    )
    if job is None:
        return None
    return Cutoffs(job.edit_cutoff, job.comparison_cutoff, job.rating_cutoff)


def active_vectors() -> QuerySet[PreferenceVector]:
    return PreferenceVector.objects.filter(is_active=True)


def etas(user: User) -> dict[str, float]:
    """The user's η by vector name, for the active vectors. A vector the user has no η for,
    and too little evidence to fit one, gets the collaborative starting η of CoPL (apps.collab)
    when there is one; else it is missing (counts as 0)."""
    names = set(active_vectors().values_list("name", flat=True))
    rows = PreferenceCoefficient.objects.filter(user=user, vector_name__in=names)
    etas = {row.vector_name: row.eta for row in rows}
    if missing := names - set(etas):
        from apps.adapters.etas import starting_etas

        etas.update(starting_etas(user, missing))
    return etas
