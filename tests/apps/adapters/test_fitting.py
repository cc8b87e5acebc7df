"""A real fit job end to end on a tiny local base model: TRL DPO, the gate, files, the version."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.adapters import services
from apps.adapters.models import AdapterVersion, FitJob
from tests.apps.adapters.conftest import give_pairs
from workers.adapters.jobs import adapter_store, run_fit_job

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_fit_job_trains_evaluates_stores_and_promotes(user, tiny_base_model, monkeypatch):
    monkeypatch.setattr("apps.adapters.services._enqueue", lambda job: None)
    give_pairs(user, 10)
    job, _ = services.request_fit(user)
    seen: list[float] = []
    summary = run_fit_job(job.pk, on_progress=lambda f, loss: seen.append(f))

    job.refresh_from_db()
    version = AdapterVersion.objects.get(fit_job=job)
    assert job.status == FitJob.Status.SUCCEEDED and job.progress == 1.0 and job.attempts == 1
    assert seen and seen[-1] == pytest.approx(1.0)
    assert version.data_counts == {"pairs": 10, "train": 8, "heldout": 2}
    assert version.evaluation["candidate"] == 1.0  # it learned to prefer short bullets
    assert summary["promoted"] is version.evaluation["promoted"]
    assert version.status == ("active" if version.evaluation["promoted"] else "candidate")
    store = adapter_store()
    manifest = store.verify(version.storage_path, version.base_fingerprint)
    assert manifest["job"] == job.pk
    assert version.target_modules and version.rank == 4

    # the task redelivered after the job finished changes nothing
    assert run_fit_job(job.pk)["skipped"] == "already finished"
    assert AdapterVersion.objects.filter(user=user).count() == 1


def test_a_job_interrupted_mid_fit_is_retried_to_one_version(user, tiny_base_model, monkeypatch):
    monkeypatch.setattr("apps.adapters.services._enqueue", lambda job: None)
    give_pairs(user, 10)
    job, _ = services.request_fit(user)
    calls = {"n": 0}

    def die_once(fraction, loss):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("worker killed")  # not an Exception: like a lost process

    with pytest.raises(KeyboardInterrupt):
        run_fit_job(job.pk, on_progress=die_once)
    job.refresh_from_db()
    assert job.status == FitJob.Status.RUNNING and not AdapterVersion.objects.exists()
    assert run_fit_job(job.pk)["skipped"] == "held by another worker"  # its heartbeat is fresh
    FitJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    run_fit_job(job.pk)  # the redelivered task, once the heartbeat went stale: takes it over
    job.refresh_from_db()
    assert job.status == FitJob.Status.SUCCEEDED and job.attempts == 2
    assert AdapterVersion.objects.filter(fit_job=job).count() == 1
