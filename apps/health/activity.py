"""Proof that a queue's pool processes work, written by the pool processes themselves.

The main process's heartbeat (``apps.health.heartbeat``) goes on while its pool hangs, so
/healthz also needs word from the processes that run tasks: each records when a task from a
queue finished (``QueueActivity.finished_at``, at most once a second per queue and process) and,
while a task runs, a beat from a thread of its own every ``ATTUNE_WORKER_HEARTBEAT_SECONDS``
(``busy_at``): a fit that runs for an hour keeps its queue "busy", not dead. A killed or hung
pool process writes neither.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery.signals import task_postrun, task_prerun
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

log = logging.getLogger(__name__)

WRITE_EVERY_S = 1.0
_running: dict[str, str] = {}  # task id -> queue, in this process
_last_write: dict[str, float] = {}
_lock = threading.Lock()
_beating_pid: int | None = None


def queue_of(task: Any) -> str | None:
    """The queue a task was taken from (its routing key: each queue has its own), or None for a
    task run in-process (eager)."""
    info = getattr(getattr(task, "request", None), "delivery_info", None) or {}
    if info.get("is_eager"):
        return None
    queue = info.get("routing_key")
    return queue if isinstance(queue, str) and queue else None


def note(queue: str, field: str) -> None:
    """Set ``field`` (``finished_at`` or ``busy_at``) of ``queue``'s row to now (one upsert)."""
    from apps.health.models import QueueActivity

    QueueActivity.objects.bulk_create(
        [QueueActivity(queue=queue, **{field: timezone.now()})],
        update_conflicts=True,
        unique_fields=["queue"],
        update_fields=[field],
    )


def _beat_while_busy() -> None:
    while True:
        time.sleep(settings.ATTUNE_WORKER_HEARTBEAT_SECONDS)
        with _lock:
            queues = set(_running.values())
        if not queues:
            continue
        try:
            close_old_connections()
            for queue in queues:
                note(queue, "busy_at")
        except Exception:  # the database may be away for a moment; the next beat tries again
            log.exception("could not record that a task is running")
        finally:
            connection.close()


@task_prerun.connect
def task_started(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    global _beating_pid
    queue = queue_of(task)
    if queue is None or task_id is None:
        return
    with _lock:
        _running[task_id] = queue
        if _beating_pid != os.getpid():  # one thread per pool process, started in that process
            _beating_pid = os.getpid()
            threading.Thread(target=_beat_while_busy, name="busy-beat", daemon=True).start()


@task_postrun.connect
def task_finished(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    queue = queue_of(task)
    if queue is None:
        return
    with _lock:
        _running.pop(task_id or "", None)
        due = time.monotonic() - _last_write.get(queue, float("-inf")) >= WRITE_EVERY_S
        if due:
            _last_write[queue] = time.monotonic()
    if due:
        try:
            note(queue, "finished_at")
        except Exception:
            log.exception("could not record that a task finished")
