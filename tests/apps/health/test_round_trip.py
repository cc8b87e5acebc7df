"""The queue round trip of /healthz with a real worker (Redis broker): a ping comes back; a
pool busy with a long task is ``busy`` (200), not dead; a pool that stops answering while its
main process keeps beating (SIGSTOP on the pool process) is ``stuck`` (503), and ok again once
it runs."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import psutil
import pytest
from django.test import Client

from apps.health import queues
from apps.health.models import WorkerHeartbeat
from tests.support.processes import REDIS_URL, celery_worker, wait_for_other_sessions_to_close

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
TOKEN = "round-trip-token"


def until(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture
def redis_app(settings, monkeypatch) -> Iterator[object]:
    from attune.celery import app

    settings.ATTUNE_HEALTH_TOKEN = TOKEN
    settings.ATTUNE_SERVING_URLS = []  # serving is not what this test is about
    settings.ATTUNE_HEALTH_ROUND_TRIP_CACHE_SECONDS = 0  # ping every time
    settings.ATTUNE_HEALTH_QUEUE_IDLE_SECONDS = 0.5
    settings.ATTUNE_WORKER_STALE_SECONDS = 2
    monkeypatch.setenv("ATTUNE_WORKER_HEARTBEAT_SECONDS", "1")  # the worker's beats
    original = app.conf.broker_url
    app.conf.broker_url = REDIS_URL
    with app.connection_for_write() as connection:
        for name in ("default", "gpu"):
            connection.default_channel.queue_purge(name)
    queues.forget()
    yield app
    queues.forget()
    app.conf.broker_url = original
    wait_for_other_sessions_to_close()


def queue_states() -> dict[str, str]:
    body = Client().get("/healthz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    return {name: q["state"] for name, q in body["checks"]["queues"]["queues"].items()}


def gpu_round_trip_ms() -> float | None:
    body = Client().get("/healthz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    return body["checks"]["queues"]["queues"]["gpu"].get("round_trip_ms")


def test_ping_busy_stuck_and_back(redis_app):
    with celery_worker(REDIS_URL, include="tests.apps.health.worker_tasks") as worker:
        until(lambda: WorkerHeartbeat.objects.exists(), 90, "the worker's heartbeat")
        until(lambda: queue_states() == {"default": "ok", "gpu": "ok"}, 30, "pings answered")
        # A ping answered late (a loaded machine) reads "busy" with no round trip: ask again.
        trip = until(gpu_round_trip_ms, 30, "a ping's round trip measured")
        assert 0 < trip < 3000

        redis_app.send_task("tests.health.hold", args=[40], queue="gpu")  # long: a loaded CI
        until(lambda: queue_states()["gpu"] == "busy", 30, "busy while the long task runs")
        (pool,) = psutil.Process(worker.pid).children()
        os.kill(pool.pid, signal.SIGSTOP)  # the pool hangs; the main process keeps beating
        try:
            until(lambda: queue_states()["gpu"] == "stuck", 20, "stuck once the beats stop")
            assert WorkerHeartbeat.objects.get().last_seen_at  # heartbeats alone said ok
        finally:
            os.kill(pool.pid, signal.SIGCONT)
        until(lambda: queue_states()["gpu"] in {"busy", "ok"}, 30, "back once the pool runs")
