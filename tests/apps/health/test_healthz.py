"""/healthz: anyone gets the status only (200 ``ok``/``degraded``, 503 ``loading``/``error``);
staff and holders of ``ATTUNE_HEALTH_TOKEN`` get every check: database, pgvector, broker,
workers, a round trip through each queue, the serving replicas and versions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
from django.utils import timezone

from apps.health import queues
from apps.health.models import QueueActivity, WorkerHeartbeat
from tests.support.factories import UserFactory
from tests.support.serving import StandIn, stand_ins

pytestmark = pytest.mark.django_db
TOKEN = "health-token-for-tests"


@pytest.fixture(autouse=True)
def replicas(settings) -> Iterator[list[StandIn]]:
    """Two stand-in serving replicas, both up (nothing else on this machine is asked)."""
    settings.ATTUNE_HEALTH_TOKEN = TOKEN
    queues.forget()
    with stand_ins(2, "key") as started:
        settings.ATTUNE_SERVING_URLS = [r.url for r in started]
        yield started
    queues.forget()


def beat(hostname: str, names: list[str], age_seconds: float = 0, worked: bool = True) -> None:
    """A worker's heartbeat; with ``worked``, a task just finished on each of its queues too
    (proof enough of a round trip: no ping is sent)."""
    now = timezone.now() - timedelta(seconds=age_seconds)
    WorkerHeartbeat.objects.create(
        hostname=hostname, queues=names, pid=1, started_at=now, last_seen_at=now
    )
    for name in names if worked else []:
        QueueActivity.objects.update_or_create(queue=name, defaults={"finished_at": now})


def detailed(client, **extra):
    return client.get("/healthz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **extra)


def test_anyone_gets_the_status_only(client):
    beat("w1@host", ["default", "gpu"])
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")
    wrong = client.get("/healthz", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.json() == {"status": "ok"}
    client.force_login(UserFactory())  # a user, not staff
    assert client.get("/healthz").json() == {"status": "ok"}


def test_details_for_the_token_and_for_staff(client, replicas):
    beat("w1@host", ["default", "gpu"])
    body = detailed(client).json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "pgvector", "broker", "workers", "queues"}
    assert body["checks"]["database"]["version"].startswith("PostgreSQL")
    assert body["checks"]["workers"]["workers"][0]["hostname"] == "w1@host"
    assert body["checks"]["queues"]["queues"]["gpu"] == {
        "ok": True, "state": "ok", "last_task_finished_s": pytest.approx(0, abs=5)
    }  # fmt: skip
    assert body["versions"]["django"] and body["versions"]["celery"]
    assert [r["url"] for r in body["serving"]["replicas"]] == [r.url for r in replicas]
    staff = UserFactory(is_staff=True)
    staff.save()
    client.force_login(staff)
    assert client.get("/healthz").json()["checks"]["pgvector"]["ok"]


def test_no_token_set_means_staff_only(client, settings):
    settings.ATTUNE_HEALTH_TOKEN = ""
    beat("w1@host", ["default", "gpu"])
    assert client.get("/healthz", HTTP_AUTHORIZATION="Bearer ").json() == {"status": "ok"}


def test_503_without_workers(client):
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json() == {"status": "error"}
    assert response["Retry-After"] == "10"
    body = detailed(client).json()
    assert "no live worker" in body["checks"]["workers"]["error"]
    assert body["checks"]["queues"]["queues"]["gpu"]["state"] == "no worker"


def test_stale_heartbeats_and_missing_queues_count_as_down(client):
    beat("old@host", ["default", "gpu"], age_seconds=3600)
    beat("cpu@host", ["default"])
    body = detailed(client).json()
    assert body["status"] == "error"
    assert body["checks"]["workers"]["error"].endswith("gpu")


def test_503_when_broker_is_unreachable(client):
    from attune.celery import app

    beat("w1@host", ["default", "gpu"])
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = detailed(client)
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


@pytest.fixture
def redis_broker(settings) -> Iterator[str]:
    """Pings go to this test session's own Redis database, emptied afterwards."""
    from attune.celery import app
    from tests.support.processes import REDIS_URL

    settings.ATTUNE_HEALTH_PING_TIMEOUT_SECONDS = 0.3
    original = app.conf.broker_url
    app.conf.broker_url = REDIS_URL
    yield REDIS_URL
    with app.connection_for_write() as connection:
        for name in ("default", "gpu"):
            connection.default_channel.queue_purge(name)
    app.conf.broker_url = original


def test_a_live_heartbeat_whose_pool_never_answers_is_stuck(client, redis_broker):
    beat("w1@host", ["default", "gpu"], worked=False)  # the main process beats; nothing runs
    response = detailed(client)
    body = response.json()
    assert response.status_code == 503, body
    gpu = body["checks"]["queues"]["queues"]["gpu"]
    assert gpu["state"] == "stuck" and "hung or dead" in gpu["error"]
    assert body["checks"]["workers"]["ok"] is True  # heartbeats alone would have said ok


def test_a_busy_queue_is_not_dead(client, redis_broker, settings):
    beat("w1@host", ["default", "gpu"], worked=False)
    now = timezone.now()
    QueueActivity.objects.create(queue="gpu", busy_at=now)  # a long fit beats while it runs
    QueueActivity.objects.create(queue="default", finished_at=now - timedelta(seconds=30))
    body = detailed(client).json()
    assert body["status"] == "ok", body
    found = body["checks"]["queues"]["queues"]
    assert (found["gpu"]["state"], found["default"]["state"]) == ("busy", "busy")
    settings.ATTUNE_HEALTH_QUEUE_IDLE_SECONDS = 10  # the last finished task is now too old
    assert detailed(client).json()["checks"]["queues"]["queues"]["default"]["state"] == "stuck"


def test_serving_counts_one_down_is_degraded_all_down_is_503(client, replicas):
    beat("w1@host", ["default", "gpu"])
    a, b = replicas
    body = detailed(client).json()
    assert body["serving"] == {
        "ok": True, "replicas": [{"url": a.url, "state": "ok"}, {"url": b.url, "state": "ok"}],
    }  # fmt: skip
    a.stop()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "degraded"}
    b.stop()
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json() == {"status": "error"}
    body = detailed(client).json()
    assert [r["state"] for r in body["serving"]["replicas"]] == ["down", "down"]
    assert "503" in body["serving"]["error"] and body["serving"]["replicas"][0]["error"]


class Loading(BaseHTTPRequestHandler):
    """A serving process that is preparing its model (as workers.serving answers meanwhile)."""

    def do_GET(self) -> None:
        body = json.dumps(
            {"status": "loading", "loading": {"stage": "training", "fraction": 0.38}}
        ).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_loading_serving_process_is_503_loading_with_its_progress(client, settings):
    beat("w1@host", ["default", "gpu"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Loading)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.ATTUNE_SERVING_URLS = [f"http://127.0.0.1:{server.server_address[1]}"]
        response = client.get("/healthz")
        assert response.status_code == 503 and response.json() == {"status": "loading"}
        replica = detailed(client).json()["serving"]["replicas"][0]
    finally:
        server.shutdown()
        server.server_close()
    assert replica["state"] == "loading" and replica["loading"]["fraction"] == 0.38


def test_a_replica_url_with_a_password_is_redacted(client, settings, replicas):
    port = replicas[0].url.rsplit(":", 1)[1]
    settings.ATTUNE_SERVING_URLS = [f"http://user:secret@127.0.0.1:{port}"]
    replica = detailed(client).json()["serving"]["replicas"][0]
    assert "secret" not in replica["url"] and replica["state"] == "ok"


def test_one_serving_url_is_one_replica(client, settings, replicas):
    settings.ATTUNE_SERVING_URLS = []
    settings.ATTUNE_SERVING_URL = replicas[1].url
    found = detailed(client).json()["serving"]["replicas"]
    assert found == [{"url": settings.ATTUNE_SERVING_URL, "state": "ok"}]
