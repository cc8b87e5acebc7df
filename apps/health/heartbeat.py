"""Each Celery worker records a heartbeat row every few seconds while it runs, and removes it on
shutdown. /healthz reads these rows, so worker liveness works with every broker (Redis, SQLAlchemy).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

log = logging.getLogger(__name__)
_stop = threading.Event()


def _beat(hostname: str, queues: list[str], started_at: Any) -> None:
    from apps.health.models import WorkerHeartbeat

    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={
            "queues": queues,
            "pid": os.getpid(),
            "started_at": started_at,
            "last_seen_at": timezone.now(),
        },
    )


def _loop(hostname: str, queues: list[str]) -> None:
    started_at = timezone.now()
    while not _stop.is_set():
        try:
            close_old_connections()
            _beat(hostname, queues, started_at)
        except Exception:  # a database hiccup must not kill the worker; /healthz will show it
            log.exception("worker heartbeat failed")
        _stop.wait(settings.ATTUNE_WORKER_HEARTBEAT_SECONDS)
    connection.close()


@worker_ready.connect
def start_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    consumer = sender
    queues = sorted(q.name for q in consumer.task_consumer.queues) if consumer else []
    hostname = consumer.hostname if consumer else "unknown"
    _stop.clear()
    threading.Thread(target=_loop, args=(hostname, queues), name="heartbeat", daemon=True).start()


@worker_shutdown.connect
def stop_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    from apps.health.models import WorkerHeartbeat

    _stop.set()
    try:
        close_old_connections()
        if sender is not None:
            WorkerHeartbeat.objects.filter(hostname=sender.hostname).delete()
    except Exception:
        log.exception("could not remove the worker heartbeat")
