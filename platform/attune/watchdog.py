"""A worker whose prefork pool hung exits, so that its supervisor starts a fresh one.

Why: when pool processes die by ``kill -9`` (the OOM killer, an operator), billiard starts new
ones, and these can block forever on a semaphore the dead ones held (reproduced with both pool
processes of a ``-c 2`` worker killed: the new ones sit in ``futex_wait``). The main process
stays up, keeps its heartbeat and keeps taking messages, but no task starts again.

Detection, in a thread of the main process: a task the worker received has not been started for
``ATTUNE_WORKER_STUCK_SECONDS`` while the pool had a free process all that time. In a healthy
pool a free process takes a task within milliseconds; a busy one (a long fit) is not a hang.

Recovery: kill the pool processes, give the worker's unacknowledged messages back to the broker,
and exit with code 70 at once (Celery's own shutdown would hang on the same lock). ``./attune
run`` (or systemd, or compose) restarts the worker; a job it was running has a stale heartbeat
and is re-queued by the reaper (``apps.common.leases``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from celery import bootsteps
from celery.worker import state

log = logging.getLogger(__name__)
EXIT_CODE = 70  # EX_SOFTWARE: "restart me", distinct from a crash at start-up (1)


def _snapshot(requests: Iterable[Any]) -> list[Any]:
    """A copy of one of Celery's request sets, or of a channel's delivered messages (the main
    thread changes them as we read)."""
    for _ in range(5):
        try:
            return list(requests)
        except RuntimeError:  # changed size during iteration: read again
            continue
    return []


def child_processes(worker: Any) -> list[int]:
    """The pids of the worker's pool processes and of any other child (an embedded beat, which
    would outlive the worker): every direct child on Linux, else the pool's."""
    pids: set[int] = set()
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{os.getpid()}/task").iterdir():
            pids.update(int(pid) for pid in (task / "children").read_text().split())
    pool = getattr(getattr(worker, "pool", None), "_pool", None)
    pids.update(p.pid for p in getattr(pool, "_pool", []) if getattr(p, "pid", None))
    return sorted(pids)


class Stuck:
    """Tracks how long received tasks wait for a free pool process that never takes them."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.waiting: dict[str, float] = {}  # request id -> when first seen waiting

    def check(self, reserved: list[Any], active: list[Any], slots: int, now: float) -> int:
        """The number of tasks stuck longer than ``seconds`` (0: healthy)."""
        started = {r.id for r in active}
        if len(started) >= slots:  # every pool process is busy: waiting is normal
            self.waiting.clear()
            return 0
        pending = [r.id for r in reserved if r.id not in started]
        self.waiting = {rid: self.waiting.get(rid, now) for rid in pending}
        return sum(1 for since in self.waiting.values() if now - since >= self.seconds)


class PoolWatchdog(bootsteps.StartStopStep):
    """The worker bootstep that runs the check (prefork pools only; off when the setting is 0)."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        from django.conf import settings

        seconds = float(settings.ATTUNE_WORKER_STUCK_SECONDS)
        if seconds <= 0 or not hasattr(getattr(worker.pool, "_pool", None), "_pool"):
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._watch, args=(worker, seconds), name="pool-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self, worker: Any) -> None:
        self._stop.set()

    def _watch(self, worker: Any, seconds: float) -> None:
        stuck = Stuck(seconds)
        while not self._stop.wait(max(0.5, min(5.0, seconds / 4))):
            slots = getattr(worker.pool, "num_processes", None) or worker.concurrency
            count = stuck.check(
                _snapshot(state.reserved_requests),
                _snapshot(state.active_requests),
                slots,
                time.monotonic(),
            )
            if count:
                self._recover(worker, count, seconds)
                return

    def _recover(self, worker: Any, count: int, seconds: float) -> None:
        pids = child_processes(worker)
        log.critical(
            "pool hung: %d task(s) received but not started for %.0f s while pool processes "
            "were free; killing child processes %s and exiting with code %d to be restarted",
            count, seconds, pids, EXIT_CODE,
        )  # fmt: skip
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            log.critical("gave %d unacknowledged message(s) back to the broker", give_back(worker))
        except Exception:  # best effort: the reaper and the sweeps find the work anyway
            log.exception("could not give the unacknowledged messages back")
        finally:
            os._exit(EXIT_CODE)


def give_back(worker: Any) -> int:
    """Return the worker's unacknowledged messages to the broker (both transports keep them
    until the channel closes; kombu's database transport would keep them invisible forever).

    Done here rather than by Celery's cold shutdown, which hangs on the same lock as the pool
    (billiard's ``_help_stuff_finish`` acquires the inqueue lock a killed process held). The
    database transport's channel holds one SQLAlchemy session, which the main thread may be
    using this very moment (polling for the next message): sharing it lost the messages (the
    main loop died with ``IllegalStateChangeError``, the restore with a duplicate key), so they
    are put back through a channel of their own."""
    channel = getattr(
        getattr(getattr(worker, "consumer", None), "task_consumer", None), "channel", None
    )
    qos = getattr(channel, "qos", None)
    if qos is None:
        return 0
    if not type(channel).__module__.startswith("kombu.transport.sqlalchemy"):
        count = len(getattr(qos, "_delivered", None) or ())
        qos.restore_unacked_once()
        return count
    delivered = _snapshot(qos._delivered.values())
    with worker.app.connection_for_write() as connection:
        own = connection.default_channel
        for message in delivered:
            info = message.delivery_info
            payload = message.serializable()
            payload["redelivered"] = True
            for queue in channel._lookup(info["exchange"], info["routing_key"]):
                own._put(queue, payload)
    return len(delivered)
