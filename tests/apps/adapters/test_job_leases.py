"""Fit jobs as leases: claim once, heartbeat, the reaper, superseding a dead job (no workers:
the rows and the messages a real Celery app would send)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.adapters import services
from apps.adapters.models import AdapterVersion, FitJob
from apps.common import leases
from tests.apps.adapters.conftest import give_pairs

pytestmark = pytest.mark.django_db

FIELDS = {"method": "dpo", "base_model": "m", "base_fingerprint": "f", "rank": 8}
FIELDS["storage_path"] = "x"


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """The job ids whose task was sent (the broker is not what these tests are about)."""
    ids: list[int] = []
    monkeypatch.setattr("apps.adapters.services._send", ids.append)
    return ids


@pytest.fixture
def reap(django_capture_on_commit_callbacks):
    """One pass of the reaper, its messages sent as after a commit."""

    def run() -> leases.Reaped:
        with django_capture_on_commit_callbacks(execute=True):
            return services.reap_jobs()

    return run


def age(job: FitJob, seconds: float, field: str = "heartbeat_at") -> None:
    """Make the job's ``field`` ``seconds`` old, as time passing would."""
    FitJob.objects.filter(pk=job.pk).update(**{field: timezone.now() - timedelta(seconds=seconds)})


def test_a_job_is_claimed_once_and_only_its_lease_writes(user, settings, sent):
    job = FitJob.objects.create(user=user)
    lease = services.start_job(job.pk)
    assert lease is not None and lease.attempt == 1
    assert services.start_job(job.pk) is None  # a duplicate message: held by a live worker
    job.refresh_from_db()
    assert job.status == "running" and job.worker and job.heartbeat_at is not None

    age(job, settings.ATTUNE_JOB_STALE_SECONDS + 5)  # the worker died
    second = services.start_job(job.pk)  # a redelivered message takes it over
    assert second is not None and second.attempt == 2
    with pytest.raises(leases.LeaseLost):
        services.report_progress(lease, 0.5, 0.1)  # the first attempt woke up: fenced off
    with pytest.raises(leases.LeaseLost):
        services.record_adapter(lease, promote=False, **FIELDS)
    assert not AdapterVersion.objects.exists()
    assert not leases.fail(lease, "late error")  # nor can it fail the job

    services.report_progress(second, 0.5, 0.1)
    version = services.record_adapter(second, promote=False, **FIELDS)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 2 and version.fit_job_id == job.pk
    assert services.start_job(job.pk) is None  # a finished job is never redone


def test_the_reaper_requeues_dead_jobs_and_gives_up_after_max_attempts(user, settings, sent, reap):
    settings.ATTUNE_JOB_MAX_ATTEMPTS = 2
    live, dead = FitJob.objects.create(user=user), FitJob.objects.create(user=user)
    finished = FitJob.objects.create(user=user, status="succeeded", attempts=1)
    services.start_job(live.pk)
    services.start_job(dead.pk)
    age(dead, settings.ATTUNE_JOB_STALE_SECONDS + 1)
    age(finished, 3600, "created_at")

    reaped = reap()
    assert (reaped.requeued, reaped.failed, reaped.resent) == ([dead.pk], [], [])
    assert sent == [dead.pk]  # its message sent again (after commit)
    dead.refresh_from_db()
    assert dead.status == "queued" and dead.attempts == 1 and dead.heartbeat_at is None
    assert FitJob.objects.get(pk=live.pk).status == "running"
    assert reap().requeued == []  # nothing twice

    services.start_job(dead.pk)  # the second and last attempt dies too
    age(dead, settings.ATTUNE_JOB_STALE_SECONDS + 1)
    assert reap().failed == [dead.pk]
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.finished_at is not None
    assert dead.error.startswith("Gave up after 2 attempt(s): each time the worker running it")
    assert services.start_job(dead.pk) is None and sent == [dead.pk]


def test_the_reaper_resends_a_queued_job_nobody_claimed(user, settings, sent, reap):
    waiting = FitJob.objects.create(user=user, queued_at=timezone.now())
    lost = FitJob.objects.create(user=user, queued_at=timezone.now())
    age(lost, settings.ATTUNE_JOB_RESEND_SECONDS + 1, "queued_at")
    assert reap().resent == [lost.pk] and sent == [lost.pk]
    assert reap().resent == []  # sent again only after another wait
    assert FitJob.objects.get(pk=waiting.pk).status == "queued"


def test_a_dead_job_is_superseded_by_a_new_request_and_a_live_one_is_returned(
    user, settings, sent, django_capture_on_commit_callbacks
):
    give_pairs(user, 10)
    with django_capture_on_commit_callbacks(execute=True):
        job, created = services.request_fit(user)
    assert created and sent == [job.pk]
    services.start_job(job.pk)
    assert services.request_fit(user) == (job, False)  # alive: returned as it is

    age(job, settings.ATTUNE_JOB_STALE_SECONDS + 1)  # its worker was killed
    with django_capture_on_commit_callbacks(execute=True):
        new, created = services.request_fit(user)
    assert created and new.pk != job.pk and sent == [job.pk, new.pk]
    job.refresh_from_db()
    assert job.status == "failed" and job.error.startswith(f"Superseded by job {new.pk}:")
    assert services.request_fit(user) == (new, False)
