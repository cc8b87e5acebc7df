"""Fit jobs survive ``kill -9`` of real worker processes and are done exactly once.

Each test runs real Celery workers on the test database with the tiny base model and short lease
settings: heartbeat 0.5 s, stale after 3 s, the reaper (beat inside the second worker) every
second, a hung pool noticed after 4 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

import pytest

from apps.adapters import services
from apps.adapters.models import AdapterVersion, FitJob
from apps.common.leases import is_dead
from tests.apps.adapters.conftest import give_pairs
from tests.support.processes import (
    REDIS_URL,
    celery_worker,
    child_pids,
    database_broker_url,
    project_celery,
    wait_for,
    wait_for_other_sessions_to_close,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LEASES = {
    "ATTUNE_JOB_HEARTBEAT_SECONDS": "0.5",
    "ATTUNE_JOB_STALE_SECONDS": "3",
    "ATTUNE_JOB_REAP_SECONDS": "1",
    "ATTUNE_WORKER_STUCK_SECONDS": "4",
}


@pytest.fixture
def worker_env(tiny_base_model, tmp_path, settings) -> dict[str, str]:
    """The worker's settings: the tiny model's fit (long enough to be killed mid-way), files
    under tmp_path, short leases (the test process uses the same)."""
    for name, value in LEASES.items():
        setattr(settings, name, float(value))
    return {
        **LEASES,
        "ATTUNE_ADAPTER_ROOT": str(tmp_path / "adapters"),
        "ATTUNE_ARTIFACT_STORE": str(tmp_path / "artifacts"),
        "ATTUNE_FIT_RANK": "4",
        "ATTUNE_FIT_ALPHA": "8",
        "ATTUNE_FIT_LEARNING_RATE": "2e-2",
        "ATTUNE_FIT_BATCH_SIZE": "4",
        "ATTUNE_FIT_EPOCHS": "60",
    }


@pytest.fixture(params=["database", "redis"])
def broker(request) -> str:
    url = database_broker_url() if request.param == "database" else REDIS_URL
    with project_celery(url):
        yield url
    wait_for_other_sessions_to_close()


def job_row(pk: int) -> FitJob:
    return FitJob.objects.get(pk=pk)


def fitting(pk: int) -> bool:
    """The job's worker is inside the training loop."""
    job = job_row(pk)
    return job.status == FitJob.Status.RUNNING and job.progress > 0


def worker_broker(url: str) -> str | None:
    return url if url == REDIS_URL else None  # the worker's default is the database broker


@pytest.mark.parametrize("killed", ["main process", "pool processes"])
def test_a_fit_whose_worker_is_killed_completes_exactly_once(
    user, worker_env, broker, killed, tmp_path
):
    give_pairs(user, 10)
    job, _ = services.request_fit(user)  # its message goes to the broker now
    concurrency = 1 if killed == "main process" else 2
    with contextlib.ExitStack() as workers:
        first = workers.enter_context(
            celery_worker(worker_broker(broker), concurrency=concurrency, env=worker_env)
        )
        wait_for(lambda: fitting(job.pk), 120, "the fit to start training")
        if killed == "main process":
            os.kill(first.pid, signal.SIGKILL)  # its pool process follows (PDEATHSIG)
            assert first.wait(timeout=10) == -signal.SIGKILL
            stuck = job_row(job.pk)  # and nothing will redeliver its message
            assert stuck.status == FitJob.Status.RUNNING and stuck.attempts == 1
            assert not AdapterVersion.objects.exists()
        else:
            for pid in child_pids(first.pid):
                os.kill(pid, signal.SIGKILL)
            # The task comes back (reject on worker lost). The new pool processes often hang:
            # then the watchdog exits the worker (70) for its supervisor to restart. When the
            # pool recovers, the task takes the job over once its heartbeat is stale, or finds
            # it still fresh and leaves it to the reaper.
            with contextlib.suppress(subprocess.TimeoutExpired):
                assert first.wait(timeout=20) == 70

        workers.enter_context(
            celery_worker(worker_broker(broker), beat_schedule=tmp_path / "beat", env=worker_env)
        )  # the restarted worker, with the reaper on the beat schedule
        done = wait_for(
            lambda: (j := job_row(job.pk)).status == FitJob.Status.SUCCEEDED and j,
            180,
            "the fit to succeed",
        )
    assert done.attempts == 2 and done.error == "" and done.progress == 1.0
    assert AdapterVersion.objects.filter(user=user).count() == 1  # one version, one completion
    assert AdapterVersion.objects.get(user=user).fit_job_id == job.pk


def test_a_dead_fit_no_longer_blocks_a_new_request(user, worker_env, client_for):
    give_pairs(user, 10)
    client = client_for(user)
    with project_celery(database_broker_url()):
        first = client.post("/api/fit-jobs")
        assert first.status_code == 202
        pk = first.json()["id"]
        with celery_worker(env=worker_env) as worker:
            wait_for(lambda: job_row(pk).status == FitJob.Status.RUNNING, 120, "the claim")
            again = client.post("/api/fit-jobs")  # alive: the same job, as before
            assert again.status_code == 200 and again.json()["id"] == pk
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        wait_for(lambda: is_dead(job_row(pk)), 10, "the heartbeat to go stale")
        new = client.post("/api/fit-jobs")
    wait_for_other_sessions_to_close()
    assert new.status_code == 202 and new.json()["id"] != pk and new.json()["status"] == "queued"
    dead = job_row(pk)
    assert dead.status == FitJob.Status.FAILED
    assert dead.error.startswith(f"Superseded by job {new.json()['id']}: its worker (")
    assert client.get(f"/api/fit-jobs/{pk}").json()["error"] == dead.error
