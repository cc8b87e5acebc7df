"""/healthz reports database, pgvector, broker and workers; 503 when one is down."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.health.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


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
