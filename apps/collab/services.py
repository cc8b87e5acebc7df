"""Writes for CoPL: requesting a training run, its progress and outcome, activation.

A run is one :class:`CollabModelVersion` row: created (with its version number and data cutoffs)
when requested, worked on by the ``collab.train`` task, and finished in one transaction that stores
every user embedding and activates the version. A run retried after a worker died finds its own
row, rewrites its own folder and never creates a second version.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts.models import User
from apps.collab import selectors, store
from apps.collab.models import CollabModelVersion, UserEmbedding
from apps.common import leases
from apps.common.leases import Lease
from apps.common.leases import LeaseLost as LeaseLost  # for the job body (workers/)
from apps.common.leases import held as held  # the job body holds its lease while it runs
from apps.feedback.selectors import current_cutoffs
from core.errors import ArtifactError, Conflict, NotEnoughData

LOCK_KEY = 0x436F504C  # "CoPL": one training request at a time
Status = CollabModelVersion.Status


def _not_enough(needed: int, available: int, what: str) -> NotEnoughData:
    """Training asked for before there is enough feedback."""
    return NotEnoughData(
        f"Training CoPL needs at least {needed} {what}; there are {available}. "
        "Users add pairs by comparing responses, editing outputs, or rating several outputs "
        "of the same prompt.",
        needed=needed,
        available=available,
        what=what,
    )


def _lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def _send(version_id: int) -> None:
    """Send the run's task now (again, when the reaper re-queues it: the row is the truth)."""
    from apps.collab.tasks import train

    result = train.apply_async(args=[version_id], queue="gpu")
    CollabModelVersion.objects.filter(pk=version_id).update(celery_task_id=result.id)


def _enqueue(run: CollabModelVersion) -> None:
    """Send after commit; a broker that cannot take it is logged, and the reaper sends the run
    again after ``ATTUNE_JOB_RESEND_SECONDS``."""
    transaction.on_commit(lambda: _send(run.pk), robust=True)


@transaction.atomic
def request_training(
    requested_by: User | None = None,
    trigger: str = CollabModelVersion.Trigger.MANUAL,
    enqueue: bool = True,
) -> tuple[CollabModelVersion, bool]:
    """Queue a training run on the ``gpu`` queue; returns (run, created).

    A run already queued or running is returned as it is, unless it is provably dead (running,
    no heartbeat for ``ATTUNE_JOB_STALE_SECONDS``): the new run supersedes it and the old one
    fails with the reason. Too little data raises :class:`NotEnoughData` (pairs of all users,
    then users with pairs). ``enqueue=False`` leaves sending the task to the caller (a command
    that runs it in-process).
    """
    _lock()
    dead = None
    if (run := selectors.open_run()) is not None:
        dead = leases.lock_if_dead(run)
        if dead is None:
            return run, False
    cutoffs = current_cutoffs()
    needed = (settings.ATTUNE_COPL_MIN_PAIRS, settings.ATTUNE_COPL_MIN_USERS)
    summary = selectors.data_summary(cutoffs, enough=needed)
    if summary.pairs < settings.ATTUNE_COPL_MIN_PAIRS:
        raise _not_enough(settings.ATTUNE_COPL_MIN_PAIRS, summary.pairs, "preference pairs")
    if summary.users < settings.ATTUNE_COPL_MIN_USERS:
        raise _not_enough(settings.ATTUNE_COPL_MIN_USERS, summary.users, "users with pairs")
    newest = CollabModelVersion.objects.aggregate(m=Max("version"))["m"] or 0
    run = CollabModelVersion.objects.create(
        version=newest + 1,
        trigger=trigger,
        requested_by=requested_by,
        edit_cutoff=cutoffs.edit,
        comparison_cutoff=cutoffs.comparison,
        rating_cutoff=cutoffs.rating,
        queued_at=timezone.now(),
    )
    if dead is not None:
        seen = dead.heartbeat_at or dead.started_at
        when = f" since {seen:%Y-%m-%d %H:%M:%S} UTC" if seen else ""
        CollabModelVersion.objects.filter(pk=dead.pk).update(
            status=Status.FAILED,
            finished_at=timezone.now(),
            heartbeat_at=None,
            error=f"Superseded by {run.label}: its worker ({dead.worker or 'unknown'}) sent no "
            f"heartbeat{when}.",
        )
    if enqueue:
        _enqueue(run)
    return run, True


def maybe_trigger_training() -> CollabModelVersion | None:
    """Start a run when ``ATTUNE_COPL_TRIGGER_PAIRS`` (> 0) new pairs arrived since the last."""
    threshold = settings.ATTUNE_COPL_TRIGGER_PAIRS
    if threshold <= 0 or selectors.open_run() is not None:
        return None
    if selectors.new_pairs_since(selectors.last_cutoffs()) < threshold:
        return None
    try:
        run, created = request_training(trigger=CollabModelVersion.Trigger.THRESHOLD)
    except NotEnoughData:
        return None
    return run if created else None


def start_run(version_id: int) -> Lease | None:
    """Claim the run for this worker (:func:`apps.common.leases.claim`): None when it finished,
    is held by a live worker, or is out of attempts; a retry starts from zero progress."""
    return leases.claim(CollabModelVersion, version_id, progress=0.0, stage="", loss=None, error="")


def report_progress(lease: Lease, fraction: float, stage: str, loss: float | None) -> None:
    """Store the progress of a held run (a heartbeat too); :class:`LeaseLost` when this worker
    no longer holds it."""
    leases.update(lease, progress=round(min(max(fraction, 0.0), 1.0), 4), stage=stage, loss=loss)


def fail_run(lease: Lease, error: str) -> None:
    leases.fail(lease, error)


def reap_runs() -> leases.Reaped:
    """Re-queue runs whose worker died, fail those out of attempts, re-send lost messages (the
    ``collab.reap_runs`` beat task)."""
    return leases.reap(CollabModelVersion, _send)


@dataclass(frozen=True)
class EmbeddingRow:
    user_id: int
    vector: Sequence[float]
    expert: int | None
    n_pairs: int


def _activate(run: CollabModelVersion) -> None:
    CollabModelVersion.objects.filter(status=Status.ACTIVE).exclude(pk=run.pk).update(
        status=Status.RETIRED
    )
    run.status = Status.ACTIVE
    run.activated_at = timezone.now()
    run.save(update_fields=["status", "activated_at"])


def fresh_version_files(run: CollabModelVersion) -> store.VersionFiles:
    """The run's folder, emptied of an earlier attempt of the same run (not created)."""
    folder = store.folder_for(run.version)
    if folder.exists():
        shutil.rmtree(folder)
    return store.VersionFiles(folder)


def _vector_text(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(x):.9g}" for x in vector) + "]"  # 9 digits: float32 exactly


def _insert_embeddings(run: CollabModelVersion, rows: Sequence[EmbeddingRow]) -> None:
    """Every row in one statement, however many users (``unnest`` of arrays: five parameters);
    the join with the users leaves out those deleted meanwhile."""
    table, users = UserEmbedding._meta.db_table, User._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, version_id, vector, expert, n_pairs, created_at) "
            "SELECT r.user_id, %s, r.vector::vector, r.expert, r.n_pairs, %s "
            "FROM unnest(%s::bigint[], %s::text[], %s::integer[], %s::integer[]) "
            "AS r(user_id, vector, expert, n_pairs) "
            f"JOIN {users} AS u ON u.id = r.user_id",
            [
                run.pk,
                timezone.now(),
                [r.user_id for r in rows],
                [_vector_text(r.vector) for r in rows],
                [r.expert for r in rows],
                [r.n_pairs for r in rows],
            ],
        )


@transaction.atomic
def record_result(
    lease: Lease, rows: Sequence[EmbeddingRow], **fields: object
) -> CollabModelVersion:
    """Store the run's embeddings and figures and activate it, once: a retried run that finds
    its version already recorded changes nothing, and an attempt that lost its lease
    (:class:`LeaseLost`) writes nothing. Users deleted meanwhile are left out."""
    run = CollabModelVersion.objects.get(pk=lease.pk)
    if run.status in {Status.ACTIVE, Status.RETIRED}:
        return run
    run = leases.lock(lease)
    _lock()
    UserEmbedding.objects.filter(version=run).delete()
    _insert_embeddings(run, rows)
    for name, value in fields.items():
        setattr(run, name, value)
    run.progress = 1.0
    run.stage = "done"
    run.finished_at = timezone.now()
    run.heartbeat_at = None
    run.save()
    _activate(run)
    return run


@transaction.atomic
def activate(run: CollabModelVersion) -> CollabModelVersion:
    """Make a trained version (an earlier one, to roll back) the active one."""
    run = CollabModelVersion.objects.select_for_update().get(pk=run.pk)
    if run.status == Status.ACTIVE:
        return run
    if run.status != Status.RETIRED:
        raise Conflict(f"Only a trained version can be activated; {run.label} is {run.status}.")
    try:
        store.version_dir(run)
    except ArtifactError as err:
        raise Conflict(str(err)) from err
    _lock()
    _activate(run)
    return run
