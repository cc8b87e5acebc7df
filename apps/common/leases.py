"""Job rows as leases: a job whose worker died is found, re-queued and done exactly once.

A long job (a fit, a CoPL run) is a row with ``status``, ``attempts``, ``heartbeat_at``,
``queued_at`` and ``worker``; the Celery message that names it is only a nudge. The row is the
truth because no broker tells us reliably that a worker died: kombu's database transport keeps the
message of a worker killed with ``kill -9`` invisible forever (it has no visibility timeout), and
Redis gives it back only after hours.

- **Claim**: the task takes the row in one locked update: ``queued`` (or ``running`` with a stale
  heartbeat) becomes ``running`` with ``attempts + 1``. That number is the lease: every later write
  of the job (progress, result, failure) matches it, so a duplicate or late message finds nothing
  to claim and exits, a finished job is never redone, and a worker that lost its lease (it froze
  and was re-queued) cannot write a second result.
- **Heartbeat**: while the job runs, a thread renews ``heartbeat_at`` every
  ``ATTUNE_JOB_HEARTBEAT_SECONDS`` (database time, so clocks of different nodes don't matter).
- **Reaper** (Celery beat, every ``ATTUNE_JOB_REAP_SECONDS``): a ``running`` job silent for
  ``ATTUNE_JOB_STALE_SECONDS`` is re-queued and its message sent again; after
  ``ATTUNE_JOB_MAX_ATTEMPTS`` attempts it fails with a message that says so. A ``queued`` job that
  no worker claimed for ``ATTUNE_JOB_RESEND_SECONDS`` (its message was lost) is sent again.
- **Dead**: a running job with a stale heartbeat is provably dead; a new request for the same work
  supersedes it instead of returning it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections, models, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Now

log = logging.getLogger(__name__)
QUEUED, RUNNING, FAILED = "queued", "running", "failed"


class LeaseLost(Exception):
    """This worker no longer holds the job (re-queued after its heartbeat went stale, or
    superseded): it stops without writing anything more."""


@dataclass(frozen=True)
class Lease:
    """The right of one attempt to work on one job row."""

    model: type[models.Model]
    pk: int
    attempt: int

    def rows(self) -> models.QuerySet:
        """The job's row while this lease still holds it (else empty)."""
        return self.model.objects.filter(pk=self.pk, status=RUNNING, attempts=self.attempt)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _ago(seconds: float) -> models.Expression:
    """Database time ``seconds`` ago (every node compares against the same clock)."""
    return models.ExpressionWrapper(
        Now() - Value(timedelta(seconds=seconds)), output_field=models.DateTimeField()
    )


def stale(queryset: models.QuerySet) -> models.QuerySet:
    """Running jobs with no sign of life for ``ATTUNE_JOB_STALE_SECONDS``: provably dead."""
    return (
        queryset.filter(status=RUNNING)
        .annotate(last_seen=Coalesce("heartbeat_at", "started_at", "created_at"))
        .filter(last_seen__lt=_ago(settings.ATTUNE_JOB_STALE_SECONDS))
    )


def unclaimed(queryset: models.QuerySet) -> models.QuerySet:
    """Queued jobs whose message went out ``ATTUNE_JOB_RESEND_SECONDS`` ago and that no worker
    claimed since (the message was lost with a worker, or never arrived)."""
    return (
        queryset.filter(status=QUEUED)
        .annotate(sent=Coalesce("queued_at", "created_at"))
        .filter(sent__lt=_ago(settings.ATTUNE_JOB_RESEND_SECONDS))
    )


def is_dead(job: models.Model) -> bool:
    return stale(type(job).objects.filter(pk=job.pk)).exists()


def lock_if_dead(job: models.Model) -> Any:
    """The job's row locked (until the transaction ends) when it is dead, else None: what a
    new request checks before superseding it, so that the reaper cannot re-queue it meanwhile."""
    return stale(type(job).objects.select_for_update().filter(pk=job.pk)).first()


def claim(model: type[models.Model], pk: int, **reset: Any) -> Lease | None:
    """Take job ``pk`` for this worker: ``queued``, or ``running`` but dead, becomes ``running``
    with ``attempts + 1`` (and the ``reset`` fields); None when it is finished, held by a live
    worker, or out of attempts (the reaper fails it)."""
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=pk).first()
        if row is None or row.attempts >= settings.ATTUNE_JOB_MAX_ATTEMPTS:
            return None
        if row.status != QUEUED and not (row.status == RUNNING and is_dead(row)):
            return None
        model.objects.filter(pk=pk).update(
            status=RUNNING,
            attempts=F("attempts") + 1,
            heartbeat_at=Now(),
            worker=worker_name()[:200],
            started_at=Coalesce("started_at", Now()),
            **reset,
        )
        return Lease(model, pk, row.attempts + 1)


def renew(lease: Lease) -> bool:
    """Record a heartbeat; False when the lease is gone."""
    return lease.rows().update(heartbeat_at=Now()) == 1


def update(lease: Lease, **fields: Any) -> None:
    """Write ``fields`` of a held job; :class:`LeaseLost` when it is no longer this attempt's."""
    if lease.rows().update(heartbeat_at=Now(), **fields) != 1:
        raise LeaseLost(f"{lease.model.__name__} {lease.pk}: attempt {lease.attempt} lost it")


def lock(lease: Lease) -> models.Model:
    """The held job's row, locked until the transaction ends (call inside one);
    :class:`LeaseLost` when it is no longer this attempt's."""
    row = lease.rows().select_for_update().first()
    if row is None:
        raise LeaseLost(f"{lease.model.__name__} {lease.pk}: attempt {lease.attempt} lost it")
    return row


def fail(lease: Lease, error: str) -> bool:
    """Mark a held job failed; False (nothing written) when the lease is gone."""
    return (
        lease.rows().update(status=FAILED, error=error[:2000], finished_at=Now(), heartbeat_at=None)
        == 1
    )


@contextmanager
def held(lease: Lease) -> Iterator[Lease]:
    """Renew ``lease`` from a thread every ``ATTUNE_JOB_HEARTBEAT_SECONDS`` while the body runs
    (loading a model or evaluating reports no progress, and must not look dead). The thread only
    renews; the body's own writes go through :func:`update` and :func:`lock`, which notice a lost
    lease."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.ATTUNE_JOB_HEARTBEAT_SECONDS):
                try:
                    renew(lease)
                except Exception:  # a database hiccup: try again; a long one makes it stale
                    log.warning("heartbeat of %s %s failed", lease.model.__name__, lease.pk)
        finally:
            connections.close_all()  # this thread's own connections

    thread = threading.Thread(target=beat, name=f"lease-{lease.pk}", daemon=True)
    thread.start()
    try:
        yield lease
    finally:
        stop.set()
        thread.join(timeout=10)


@dataclass
class Reaped:
    """What one pass of the reaper did, by job id."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)


def _gave_up(row: Any) -> str:
    seen = row.heartbeat_at or row.started_at
    when = f" at {seen:%Y-%m-%d %H:%M:%S} UTC" if seen else ""
    return (
        f"Gave up after {row.attempts} attempt(s): each time the worker running it stopped "
        f"sending heartbeats (last from {row.worker or 'an unknown worker'}{when}). "
        "Check the gpu worker's log; request it again to retry."
    )


def reap(model: type[models.Model], send: Callable[[int], None]) -> Reaped:
    """Re-queue (and ``send`` again) dead running jobs, fail those out of attempts, and re-send
    queued jobs nobody claimed. Each row is re-checked under its lock, so a job renewed or
    claimed meanwhile is left alone; messages go out after commit."""
    done = Reaped()
    for pk in list(stale(model.objects.all()).values_list("pk", flat=True)):
        with transaction.atomic():
            row = stale(model.objects.select_for_update().filter(pk=pk)).first()
            if row is None:
                continue
            if row.attempts >= settings.ATTUNE_JOB_MAX_ATTEMPTS:
                model.objects.filter(pk=pk).update(
                    status=FAILED, error=_gave_up(row), finished_at=Now(), heartbeat_at=None
                )
                done.failed.append(pk)
                continue
            model.objects.filter(pk=pk).update(status=QUEUED, queued_at=Now(), heartbeat_at=None)
            transaction.on_commit(lambda pk=pk: send(pk), robust=True)
            done.requeued.append(pk)
    for pk in list(unclaimed(model.objects.all()).values_list("pk", flat=True)):
        with transaction.atomic():
            if unclaimed(model.objects.select_for_update().filter(pk=pk)).first() is None:
                continue
            model.objects.filter(pk=pk).update(queued_at=Now())
            transaction.on_commit(lambda pk=pk: send(pk), robust=True)
            done.resent.append(pk)
    if done.requeued or done.failed or done.resent:
        log.warning("%s reaper: %s", model.__name__, done)
    return done
