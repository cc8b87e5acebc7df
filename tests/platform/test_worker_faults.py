"""Worker faults: a hung prefork pool is detected and the worker recovers (exits 70 to be
restarted, its messages given back); embedding work lost with a worker is swept up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from apps.feedback.models import Interaction
from attune.watchdog import EXIT_CODE, Stuck
from tests.support.factories import InteractionFactory
from tests.support.processes import (
    REDIS_URL,
    celery_worker,
    child_pids,
    database_broker_url,
    project_celery,
    wait_for,
    wait_for_other_sessions_to_close,
)

WATCHDOG = {"ATTUNE_WORKER_STUCK_SECONDS": "3"}


@pytest.fixture(params=["database", "redis"])
def broker(request):
    url = database_broker_url() if request.param == "database" else REDIS_URL
    with project_celery(url) as app:
        yield SimpleNamespace(app=app, worker_url=url if url == REDIS_URL else None)
    wait_for_other_sessions_to_close()


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def echo(app, value: str):
    return app.send_task("health.echo", args=[value], queue="default")


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_pool_that_takes_no_task_exits_the_worker_and_its_tasks_come_back(broker):
    with celery_worker(broker.worker_url, concurrency=2, env=WATCHDOG) as worker:
        assert echo(broker.app, "warm").get(timeout=60)["value"] == "warm"
        pool = child_pids(worker.pid)
        assert len(pool) == 2
        for pid in pool:  # both pool processes alive but taking nothing: a hung pool
            os.kill(pid, signal.SIGSTOP)
        waiting = [echo(broker.app, f"after {i}") for i in range(2)]
        started = time.monotonic()
        assert worker.wait(timeout=60) == EXIT_CODE
        assert time.monotonic() - started < 20  # 3 s of waiting, then the exit
        # killed, not left over (a process with torch loaded takes a moment to be torn down)
        wait_for(lambda: not any(alive(pid) for pid in pool), 15, "the pool processes to die")
    with celery_worker(broker.worker_url):  # restarted: the tasks it held were given back
        assert [r.get(timeout=60)["value"] for r in waiting] == ["after 0", "after 1"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_tasks_complete_after_kill_9_of_both_pool_processes():
    """The fault of issue 19: whether the new pool processes hang (then the watchdog exits the
    worker and a restarted one takes over) or not, every task sent completes."""
    with project_celery(database_broker_url()) as app, contextlib.ExitStack() as workers:
        first = workers.enter_context(celery_worker(concurrency=2, env=WATCHDOG))
        assert echo(app, "warm").get(timeout=60)["value"] == "warm"
        for pid in child_pids(first.pid):
            os.kill(pid, signal.SIGKILL)
        sent = [echo(app, f"after {i}") for i in range(4)]
        with contextlib.suppress(subprocess.TimeoutExpired):
            assert first.wait(timeout=20) == EXIT_CODE  # hung: detected
        if first.poll() is not None:
            workers.enter_context(celery_worker())  # its supervisor restarts it
        assert [r.get(timeout=60)["value"] for r in sent] == [f"after {i}" for i in range(4)]
    wait_for_other_sessions_to_close()


def test_waiting_for_a_busy_pool_is_not_a_hang():
    stuck = Stuck(seconds=3)
    fit, queued = SimpleNamespace(id="fit"), SimpleNamespace(id="queued")
    assert stuck.check([fit, queued], [fit], slots=1, now=0) == 0  # every process is busy
    assert stuck.check([fit, queued], [fit], slots=1, now=100) == 0
    assert stuck.check([fit, queued], [fit], slots=2, now=101) == 0  # a free one: the clock runs
    assert stuck.check([fit, queued], [fit], slots=2, now=104.5) == 1
    assert stuck.check([fit], [fit], slots=2, now=105) == 0  # it started after all


@pytest.mark.django_db
def test_rows_a_lost_embedding_task_left_behind_are_swept_up(user, eager_celery_raising):
    from apps.common.tasks import sweep_embeddings

    rows = InteractionFactory.create_batch(2, user=user)  # as if their task died with a worker
    assert Interaction.objects.filter(pk__in=[r.pk for r in rows], embedding=None).count() == 2
    assert "feedback.Interaction" in sweep_embeddings.delay().get()
    assert not Interaction.objects.filter(embedding=None).exists()
    assert "feedback.Interaction" not in sweep_embeddings.delay().get()
