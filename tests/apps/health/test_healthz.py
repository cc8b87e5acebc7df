"""/healthz reports database, pgvector, broker and workers; 503 when one is down. It lists the
serving replicas beside them, without changing the status."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.health.models import WorkerHeartbeat
from tests.support.serving import StandIn, stand_ins

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def replicas(settings) -> Iterator[list[StandIn]]:
    """Two stand-in serving replicas, both up (nothing else on this machine is asked)."""
    with stand_ins(2, "key") as started:
        settings.ATTUNE_SERVING_URLS = [r.url for r in started]
        yield started


def beat(hostname: str, queues: list[str], age_seconds: float = 0) -> None:
    now = timezone.now() - timedelta(seconds=age_seconds)
    WorkerHeartbeat.objects.create(
        hostname=hostname, queues=queues, pid=1, started_at=now, last_seen_at=now
    )


def test_all_ok_with_a_live_worker_on_every_queue(client):
    beat("w1@host", ["default", "gpu"])
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["checks"]["pgvector"]["ok"]
    assert body["checks"]["workers"]["workers"][0]["hostname"] == "w1@host"


def test_503_without_workers(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "no live worker" in response.json()["checks"]["workers"]["error"]


def test_stale_heartbeats_and_missing_queues_count_as_down(client):
    beat("old@host", ["default", "gpu"], age_seconds=3600)
    beat("cpu@host", ["default"])
    body = client.get("/healthz").json()
    assert body["status"] == "error"
    assert body["checks"]["workers"]["error"].endswith("gpu")


def test_503_when_broker_is_unreachable(client, settings):
    from attune.celery import app

    beat("w1@host", ["default", "gpu"])
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


def test_every_serving_replica_is_listed_and_one_down_keeps_it_green(client, replicas):
    beat("w1@host", ["default", "gpu"])
    a, b = replicas
    body = client.get("/healthz").json()
    assert body["serving"] == {
        "ok": True, "replicas": [{"url": a.url, "state": "ok"}, {"url": b.url, "state": "ok"}],
    }  # fmt: skip
    a.stop()
    b.mode = "loading"
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert [(r["url"], r["state"]) for r in body["serving"]["replicas"]] == [
        (a.url, "down"), (b.url, "loading"),
    ]  # fmt: skip
    assert body["serving"]["replicas"][0]["error"]
    assert body["serving"]["ok"] is False and "503" in body["serving"]["error"]
    assert body["status"] == "ok"  # the web works without generation


def test_a_replica_url_with_a_password_is_redacted(client, settings, replicas):
    port = replicas[0].url.rsplit(":", 1)[1]
    settings.ATTUNE_SERVING_URLS = [f"http://user:secret@127.0.0.1:{port}"]
    replica = client.get("/healthz").json()["serving"]["replicas"][0]
    assert "secret" not in replica["url"] and replica["state"] == "ok"


def test_one_serving_url_is_one_replica(client, settings, replicas):
    settings.ATTUNE_SERVING_URLS = []
    settings.ATTUNE_SERVING_URL = replicas[1].url
    replicas = client.get("/healthz").json()["serving"]["replicas"]
    assert replicas == [{"url": settings.ATTUNE_SERVING_URL, "state": "ok"}]
