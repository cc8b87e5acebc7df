"""A round trip through each Celery queue for /healthz: a ping task (``health.echo``) sent to the
queue and answered by a worker, so a pool that hangs while its main process keeps its heartbeat
shows as down.

Cheap and fast by design: a queue that answered a ping, or on which any task finished, within
``ATTUNE_HEALTH_ROUND_TRIP_CACHE_SECONDS`` is not pinged again; one ping per queue and process is
in flight at a time (it expires after ``ATTUNE_HEALTH_PING_EXPIRES_SECONDS``, so pings never pile
up behind a busy worker); a check waits at most ``ATTUNE_HEALTH_PING_TIMEOUT_SECONDS``. A ping not
answered in time is not yet a failure: workers busy with long tasks answer late, so a queue on
which a task finished in the last ``ATTUNE_HEALTH_QUEUE_IDLE_SECONDS``, or a task is still running
and beating (``apps.health.activity``), is reported ``busy`` and ok.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

PING_TASK = "health.echo"
POLL_S = 0.1

_lock = threading.Lock()
_pending: dict[str, tuple[str, float]] = {}  # queue -> (task id, monotonic time sent)
_answered: dict[str, tuple[float, float]] = {}  # queue -> (monotonic time answered, round trip s)


def forget() -> None:
    """Drop what this process remembers of earlier pings (tests start from nothing)."""
    with _lock:
        _pending.clear()
        _answered.clear()


def _activity(queues: list[str]) -> dict[str, Any]:
    from apps.health.models import QueueActivity

    return {row.queue: row for row in QueueActivity.objects.filter(queue__in=queues)}


def _seconds_since(moment: Any) -> float | None:
    return None if moment is None else round((timezone.now() - moment).total_seconds(), 1)


def _send(app: Any, queues: list[str]) -> dict[str, str]:
    """Send a ping to each of ``queues`` that has none in flight; errors by queue."""
    errors: dict[str, str] = {}
    expires = settings.ATTUNE_HEALTH_PING_EXPIRES_SECONDS
    now = time.monotonic()
    due = [q for q in queues if q not in _pending or now - _pending[q][1] > expires]
    if not due:
        return errors
    with app.connection_for_write() as connection:
        for queue in due:
            try:
                result = app.send_task(
                    PING_TASK, args=[f"ping {queue}"], queue=queue, expires=expires,
                    connection=connection, retry=False,
                )  # fmt: skip
            except Exception as err:  # the broker check says why; here only that it failed
                errors[queue] = f"could not send a ping: {str(err).strip()[:200]}"
            else:
                _pending[queue] = (result.id, time.monotonic())
    return errors


def _collect(deadline: float) -> None:
    """Wait until every pending ping is answered or ``deadline``; move answers to ``_answered``."""
    from django_celery_results.models import TaskResult

    while _pending:
        ids = {task_id: queue for queue, (task_id, _) in _pending.items()}
        done = TaskResult.objects.filter(task_id__in=ids, status="SUCCESS")
        answered = list(done.values_list("task_id", flat=True))
        for task_id in answered:
            queue = ids[task_id]
            sent = _pending.pop(queue)[1]
            _answered[queue] = (time.monotonic(), time.monotonic() - sent)
        if answered:  # a ping's row is no use once read: keep the results table small
            TaskResult.objects.filter(task_id__in=answered).delete()
        if not _pending or time.monotonic() >= deadline:
            return
        time.sleep(POLL_S)


def _verdict(queue: str, row: Any, waited: float) -> dict[str, Any]:
    """A queue whose ping is not back: busy if its pool shows signs of work, else down."""
    finished = _seconds_since(getattr(row, "finished_at", None))
    beat = _seconds_since(getattr(row, "busy_at", None))
    entry: dict[str, Any] = {"last_task_finished_s": finished, "running_task_beat_s": beat}
    if finished is not None and finished <= settings.ATTUNE_HEALTH_QUEUE_IDLE_SECONDS:
        return {"ok": True, "state": "busy", **entry}
    if beat is not None and beat <= settings.ATTUNE_WORKER_STALE_SECONDS:
        return {"ok": True, "state": "busy", **entry}
    return {
        "ok": False,
        "state": "stuck",
        "error": f"no answer to a ping in {waited:.0f} s and no task finished or running on "
        f"it lately: its workers' pool is hung or dead",
        **entry,
    }


def round_trips(queues: list[str], app: Any = None) -> dict[str, dict[str, Any]]:
    """The state of each queue in ``queues`` (each has a live worker per its heartbeat):
    ``ok`` (a ping came back, or a task just finished), ``busy`` (ok; no answer yet, but its
    workers are working) or ``stuck`` (not ok)."""
    if app is None:
        from attune.celery import app
    if app.conf.task_always_eager:
        return {q: {"ok": True, "state": "eager"} for q in queues}
    fresh = settings.ATTUNE_HEALTH_ROUND_TRIP_CACHE_SECONDS
    timeout = settings.ATTUNE_HEALTH_PING_TIMEOUT_SECONDS
    results: dict[str, dict[str, Any]] = {}
    with _lock:
        rows = _activity(queues)
        to_ping = []
        for queue in queues:
            answered = _answered.get(queue)
            finished = _seconds_since(getattr(rows.get(queue), "finished_at", None))
            if answered and time.monotonic() - answered[0] <= fresh:
                results[queue] = {"ok": True, "state": "ok", "round_trip_ms": answered[1] * 1000}
            elif finished is not None and finished <= fresh:
                results[queue] = {"ok": True, "state": "ok", "last_task_finished_s": finished}
            else:
                to_ping.append(queue)
        if not to_ping:
            return results
        started = time.monotonic()
        errors = _send(app, to_ping)
        _collect(started + timeout)
        rows = _activity(to_ping)
        for queue in to_ping:
            if queue in errors:
                results[queue] = {"ok": False, "state": "unreachable", "error": errors[queue]}
            elif queue in _answered and _answered[queue][0] >= started:
                trip = _answered[queue][1]
                results[queue] = {"ok": True, "state": "ok", "round_trip_ms": trip * 1000}
            else:
                results[queue] = _verdict(queue, rows.get(queue), time.monotonic() - started)
    for entry in results.values():
        if "round_trip_ms" in entry:
            entry["round_trip_ms"] = round(entry["round_trip_ms"], 1)
    return {q: results[q] for q in queues}
