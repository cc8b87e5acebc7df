"""Reads for adapters: versions, jobs, the cutoffs of the last fit, vectors and coefficients.

A user's training data (preference pairs and thumbs) is read by ``apps.feedback.selectors``.
"""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import User
from apps.adapters.models import AdapterVersion, FitJob, PreferenceCoefficient, PreferenceVector
from apps.feedback.selectors import Cutoffs


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
    return Cutoffs.of(job)


def active_vectors() -> QuerySet[PreferenceVector]:
    return PreferenceVector.objects.filter(is_active=True)


def etas(user: User, names: set[str] | None = None) -> dict[str, float]:
    """The user's η by vector name, for the active vectors (``names``: their names, when the
    caller has them). A vector the user has no η for, and too little evidence to fit one, gets
    the collaborative starting η of CoPL (apps.collab) when there is one; else it is missing
    (counts as 0). Bounded whatever the user's history: the evidence is running sums."""
    if names is None:
        names = set(active_vectors().values_list("name", flat=True))
    rows = PreferenceCoefficient.objects.filter(user=user, vector_name__in=names)
    etas = dict(rows.values_list("vector_name", "eta"))
    if missing := names - set(etas):
        from apps.adapters.etas import starting_etas

        etas.update(starting_etas(user, missing))
    return etas
