"""Writes for adapters: requesting fits, recording their outcome, promotion and roll-back, η."""

from __future__ import annotations

import math
from collections.abc import Mapping

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.adapters import selectors
from apps.adapters.models import AdapterVersion, FitJob, PreferenceCoefficient, PreferenceVector
from apps.common import leases
from apps.common.leases import Lease
from apps.common.leases import LeaseLost as LeaseLost  # for the job body (workers/)
from apps.common.leases import held as held  # the job body holds its lease while it runs
from apps.feedback import selectors as feedback
from apps.generation.models import LayerSettings
from core.dimensions import DIMENSION_NAMES
from core.errors import Conflict, InvalidValue, NotEnoughData


def _too_few_pairs(needed: int, available: int) -> NotEnoughData:
    """A fit asked for before the user gave enough feedback."""
    return NotEnoughData(
        f"A fit needs at least {needed} preference pairs; this user has {available}. "
        "Edit outputs or compare responses to add pairs.",
        needed=needed,
        available=available,
    )


def _send(job_id: int) -> None:
    """Send the job's task now (again, when the reaper re-queues it: the row is the truth, the
    message only tells a worker to look)."""
    from apps.adapters.tasks import fit_job

    result = fit_job.apply_async(args=[job_id], queue="gpu")
    FitJob.objects.filter(pk=job_id).update(celery_task_id=result.id)


def _enqueue(job: FitJob) -> None:
    """Send after commit; a broker that cannot take it is logged, not raised: the job is stored
    and the reaper sends it again after ``ATTUNE_JOB_RESEND_SECONDS``."""
    transaction.on_commit(lambda: _send(job.pk), robust=True)


def _has_enough_thumbs(user: User, cutoffs: feedback.Cutoffs) -> bool:
    thumbs = list(feedback.thumbs(user=user, upto=cutoffs))
    labels = {t.label for t in thumbs}
    return len(thumbs) >= settings.ATTUNE_FIT_MIN_THUMBS and labels == {True, False}


@transaction.atomic
def request_fit(user: User, trigger: str = FitJob.Trigger.MANUAL) -> tuple[FitJob, bool]:
    """Queue a fit of the user's adapter on the ``gpu`` queue; returns (job, created).

    An open job is returned as it is (a second request never starts a second fit), unless it is
    provably dead (running, with no heartbeat for ``ATTUNE_JOB_STALE_SECONDS``): then the new job
    supersedes it, and the old one fails with the reason. Too little data raises
    :class:`NotEnoughData` with the number needed.
    """
    User.objects.select_for_update().filter(pk=user.pk).first()  # one request at a time per user
    dead = None
    if (job := selectors.open_job(user)) is not None:
        dead = leases.lock_if_dead(job)
        if dead is None:
            return job, False
    cutoffs = feedback.current_cutoffs(user)
    # Exact below the minimum, which is all the answer needs (and says).
    available = feedback.new_pair_count(user, None, settings.ATTUNE_FIT_MIN_PAIRS)
    if available < settings.ATTUNE_FIT_MIN_PAIRS and not _has_enough_thumbs(user, cutoffs):
        raise _too_few_pairs(settings.ATTUNE_FIT_MIN_PAIRS, available)
    job = FitJob.objects.create(
        user=user,
        kind=FitJob.Kind.USER_ADAPTER,
        trigger=trigger,
        edit_cutoff=cutoffs.edit,
        comparison_cutoff=cutoffs.comparison,
        rating_cutoff=cutoffs.rating,
        queued_at=timezone.now(),
    )
    if dead is not None:
        _supersede(dead, job)
    _enqueue(job)
    return job, True


def _supersede(dead: FitJob, by: FitJob) -> None:
    """Fail a dead (locked) job in favour of a new one; its worker, should it wake up, cannot
    write any more: it no longer holds the lease."""
    seen = dead.heartbeat_at or dead.started_at
    when = f" since {seen:%Y-%m-%d %H:%M:%S} UTC" if seen else ""
    FitJob.objects.filter(pk=dead.pk).update(
        status=FitJob.Status.FAILED,
        finished_at=timezone.now(),
        heartbeat_at=None,
        error=f"Superseded by job {by.pk}: its worker ({dead.worker or 'unknown'}) sent no "
        f"heartbeat{when}.",
    )


def fit_due(user: User) -> bool:
    """Whether the user has given ``ATTUNE_FIT_TRIGGER_PAIRS`` new pairs since the last fit and
    has no fit queued or running, unless they turned off both layers a fit feeds.

    Run after every edit and comparison, so its cost is bounded whatever the user's history: an
    open job answers first, and the new pairs are counted only up to the threshold.
    """
    if selectors.open_job(user) is not None or _weights_off(user):
        return False
    needed = settings.ATTUNE_FIT_TRIGGER_PAIRS
    return feedback.new_pair_count(user, selectors.last_fit_cutoffs(user), needed) >= needed


def _weights_off(user: User) -> bool:
    """The user turned off both layers a fit feeds (their adapter and their sliders): no fit
    starts by itself for them (one they ask for still runs)."""
    return LayerSettings.objects.filter(user=user, adapter=False, vectors=False).exists()


def maybe_trigger_fit(user: User) -> FitJob | None:
    """Start a fit when the user has given ``ATTUNE_FIT_TRIGGER_PAIRS`` new pairs since the last."""
    if not fit_due(user):
        return None
    try:
        job, created = request_fit(user, trigger=FitJob.Trigger.THRESHOLD)
    except NotEnoughData:
        return None
    return job if created else None


def schedule_fit_check(user: User) -> None:
    """After new feedback: queue ``adapters.check_fit_trigger`` once the transaction commits.

    Called by the feedback services after an edit or comparison is stored. The cheap check runs
    here, so that the task is only sent when a fit is due (most writes send nothing); the task
    checks again under the user's lock, so one crossing of the threshold queues one fit. A broker
    that cannot take the task is logged, not raised: the feedback is stored either way.
    """
    if not fit_due(user):
        return
    from apps.adapters.tasks import check_fit_trigger

    user_id = user.pk
    transaction.on_commit(lambda: check_fit_trigger.delay(user_id), robust=True)


@transaction.atomic
def request_vector_fit(staff: User, dimension: str) -> FitJob:
    """Queue the fit of one preference vector (θ₊ and θ₋) for the current base model; an
    unknown dimension raises :class:`InvalidValue` (field ``dimension``)."""
    if dimension not in DIMENSION_NAMES:
        raise InvalidValue("dimension", f"choose one of {sorted(DIMENSION_NAMES)}")
    job = FitJob.objects.create(
        user=staff,
        kind=FitJob.Kind.PREFERENCE_VECTOR,
        dimension=dimension,
        queued_at=timezone.now(),
    )
    _enqueue(job)
    return job


def report_progress(lease: Lease, fraction: float, loss: float | None) -> None:
    """Store the progress of a held job (a heartbeat too); :class:`LeaseLost` when this worker
    no longer holds it."""
    leases.update(lease, progress=round(min(max(fraction, 0.0), 1.0), 4), loss=loss)


def start_job(job_id: int) -> Lease | None:
    """Claim the job for this worker (:func:`apps.common.leases.claim`): None when it is
    finished, held by a live worker, or out of attempts; a retry starts from zero progress."""
    return leases.claim(FitJob, job_id, progress=0.0, loss=None, error="")


def fail_job(lease: Lease, error: str) -> None:
    leases.fail(lease, error)


def reap_jobs() -> leases.Reaped:
    """Re-queue fit jobs whose worker died, fail those out of attempts, re-send lost messages
    (the ``adapters.reap_jobs`` beat task)."""
    return leases.reap(FitJob, _send)


def _succeed(job: FitJob) -> None:
    """Mark a (locked) job finished successfully."""
    job.status = FitJob.Status.SUCCEEDED
    job.progress = 1.0
    job.finished_at = timezone.now()
    job.heartbeat_at = None
    job.save(update_fields=["status", "progress", "finished_at", "heartbeat_at"])


def _lock_versions(user_id: int) -> None:
    """Lock every adapter version of the user, in id order: promote, roll back and a fit's
    promotion change the same rows, and one lock order means they queue instead of deadlocking."""
    list(
        AdapterVersion.objects.select_for_update()
        .filter(user_id=user_id)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _activate(version: AdapterVersion) -> None:
    _lock_versions(version.user_id)
    AdapterVersion.objects.filter(
        user_id=version.user_id, status=AdapterVersion.Status.ACTIVE
    ).exclude(pk=version.pk).update(status=AdapterVersion.Status.RETIRED)
    version.status = AdapterVersion.Status.ACTIVE
    version.activated_at = timezone.now()
    version.save(update_fields=["status", "activated_at"])


@transaction.atomic
def record_adapter(lease: Lease, promote: bool, **fields: object) -> AdapterVersion:
    """The job's adapter version, created once: a retried job finds the one it made, and an
    attempt that lost its lease (:class:`LeaseLost`) creates nothing."""
    existing = AdapterVersion.objects.filter(fit_job_id=lease.pk).first()
    if existing is not None:
        return existing
    locked = leases.lock(lease)
    latest = AdapterVersion.objects.filter(user_id=locked.user_id).order_by("-version").first()
    version = AdapterVersion.objects.create(
        user_id=locked.user_id,
        fit_job=locked,
        version=(latest.version + 1) if latest else 1,
        **fields,
    )
    if promote:
        _activate(version)
    _succeed(locked)
    return version


@transaction.atomic
def record_vector(lease: Lease, **fields: object) -> PreferenceVector:
    """The job's preference vector; replaces the active one of the same name (created once, by
    the attempt that holds the lease)."""
    existing = PreferenceVector.objects.filter(fit_job_id=lease.pk).first()
    if existing is not None:
        return existing
    locked = leases.lock(lease)
    name = str(fields["name"])
    latest = PreferenceVector.objects.filter(name=name).order_by("-version").first()
    PreferenceVector.objects.filter(name=name, is_active=True).update(is_active=False)
    vector = PreferenceVector.objects.create(
        fit_job=locked, version=(latest.version + 1) if latest else 1, **fields
    )
    _succeed(locked)
    return vector


@transaction.atomic
def promote(version: AdapterVersion) -> AdapterVersion:
    """Make ``version`` the user's active adapter; the previous active one is retired."""
    _lock_versions(version.user_id)
    version = AdapterVersion.objects.get(pk=version.pk)
    if version.status == AdapterVersion.Status.ACTIVE:
        return version
    _activate(version)
    return version


@transaction.atomic
def roll_back(user: User) -> AdapterVersion | None:
    """Retire the active adapter and re-activate the newest earlier version that was once
    active; with none, the user is back on the base model (returns None)."""
    _lock_versions(user.pk)
    active = selectors.active_version(user)
    if active is None:
        raise Conflict("There is no active adapter to roll back.")
    previous = (
        AdapterVersion.objects.filter(
            user=user, activated_at__isnull=False, version__lt=active.version
        )
        .order_by("-version")
        .first()
    )
    active.status = AdapterVersion.Status.RETIRED
    active.save(update_fields=["status"])
    if previous is not None:
        _activate(previous)
    return previous


def _check_etas(etas: Mapping[str, float]) -> None:
    """Every name an active preference vector, every η finite and within ±``ATTUNE_MAX_ABS_ETA``;
    else :class:`InvalidValue` for the API's field ``coefficients``, one message per problem."""
    limit = settings.ATTUNE_MAX_ABS_ETA
    known = set(selectors.active_vectors().values_list("name", flat=True))
    problems = []
    for name, eta in etas.items():
        if name not in known:
            problems.append(f"unknown preference vector {name!r}")
        elif not math.isfinite(eta) or abs(eta) > limit:
            problems.append(f"{name}: |η| must be at most {limit} (larger values break the model)")
    if problems:
        raise InvalidValue("coefficients", problems)


def set_etas(
    user: User, etas: Mapping[str, float], origin: str = PreferenceCoefficient.Origin.USER
) -> dict[str, float]:
    """Set the user's η for the named vectors (others keep theirs); returns all of them.

    Checked first (:func:`_check_etas`): an unknown vector or an η out of bounds stores nothing.
    """
    _check_etas(etas)
    for name, eta in etas.items():
        PreferenceCoefficient.objects.update_or_create(
            user=user, vector_name=name, defaults={"eta": float(eta), "origin": origin}
        )
    return selectors.etas(user)
