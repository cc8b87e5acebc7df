"""CoPL runs as leases (apps.common.leases): claimed once, re-queued by the reaper when their
worker died, superseded by a new request when dead; a fenced-off attempt records nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.collab import services
from apps.collab.models import CollabModelVersion, UserEmbedding
from apps.common.leases import LeaseLost
from tests.support.factories import ComparisonFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """The run ids whose task was sent (the broker is not what these tests are about)."""
    ids: list[int] = []
    monkeypatch.setattr("apps.collab.services._send", ids.append)
    return ids


def kill(run: CollabModelVersion, settings) -> None:
    """Its worker died: no heartbeat for longer than ``ATTUNE_JOB_STALE_SECONDS``."""
    stale = timezone.now() - timedelta(seconds=settings.ATTUNE_JOB_STALE_SECONDS + 1)
    CollabModelVersion.objects.filter(pk=run.pk).update(heartbeat_at=stale)


def test_a_dead_run_is_reaped_or_superseded_and_only_the_live_attempt_records(
    client_for, staff_user, settings, sent, django_capture_on_commit_callbacks
):
    settings.ATTUNE_COPL_MIN_PAIRS, settings.ATTUNE_COPL_MIN_USERS = 2, 2
    for _ in range(2):
        ComparisonFactory(user=UserFactory(), choice="a")
    client = client_for(staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        pk = client.post("/api/collab/versions").json()["id"]
    first = services.start_run(pk)
    assert first is not None and services.start_run(pk) is None  # a duplicate message skips
    assert client.post("/api/collab/versions").status_code == 200  # alive: the same run

    kill(CollabModelVersion.objects.get(pk=pk), settings)
    with django_capture_on_commit_callbacks(execute=True):
        reaped = services.reap_runs()
    assert reaped.requeued == [pk] and sent == [pk, pk]
    second = services.start_run(pk)
    assert second is not None and second.attempt == 2
    with pytest.raises(LeaseLost):
        services.report_progress(first, 0.5, "gnn", 0.1)  # the old attempt is fenced off
    with pytest.raises(LeaseLost):
        services.record_result(first, [services.EmbeddingRow(staff_user.pk, [0.0] * 64, 0, 1)])
    assert not UserEmbedding.objects.exists()

    kill(CollabModelVersion.objects.get(pk=pk), settings)  # the second attempt dies too
    with django_capture_on_commit_callbacks(execute=True):
        new = client.post("/api/collab/versions")
    assert new.status_code == 202 and new.json()["id"] != pk and sent[-1] == new.json()["id"]
    dead = CollabModelVersion.objects.get(pk=pk)
    assert dead.status == "failed" and dead.error.startswith("Superseded by copl-v2: its worker")
    assert services.start_run(pk) is None  # superseded: never claimed again
