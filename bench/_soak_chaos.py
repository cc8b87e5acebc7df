"""The soak benchmark's scratch platform, its people, the faults it injects and the checks after.

The bench owns the database server (so it can stop it) and runs ``./attune run`` on it as one
child process; the platform's parts are found among that process's children by command line.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import close_old_connections
from django.utils import timezone

from bench._scratch import Database, Platform, children
from bench._soak_load import Caller, Client, Recorder

ROOT = Path(__file__).resolve().parents[1]
FIT_USERS, FIT_EDITS = 4, 16
RECOVERY_TIMEOUT = 300.0
DATABASE_DOWN_SECONDS = 15.0


@dataclass
class People:
    callers: list[Caller]  # personal tokens; the first FIT_USERS can fit adapters
    app_callers: list[Caller]  # one client app's end users
    saturating_key: str
    fit_users: list[Any]


def seed(database_url: str) -> People:
    """People in the scratch database (this process becomes a Django client of it)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")
    import django

    django.setup()
    from apps.accounts.models import User
    from apps.accounts.services import create_client_app, issue_personal_token
    from bench.cluster import seed_users

    fit_users = seed_users("soak-fit-", FIT_USERS, FIT_EDITS, offset=0)
    plain = [User.objects.create_user(username=f"soak-p{n}") for n in range(3)]
    callers = [Caller(issue_personal_token(u, "soak").key) for u in [*fit_users, *plain]]
    owner = User.objects.create_user(username="soak-app-owner")
    app_key = create_client_app(owner, "soak app").key
    saturating = issue_personal_token(User.objects.create_user(username="soak-sat"), "soak").key
    app_callers = [Caller(app_key, f"end-user-{n}") for n in range(3)]
    return People(callers, app_callers, saturating, fit_users)


def probe_me(client: Client, rec: Recorder, caller: Caller, stop: threading.Event) -> None:
    while not stop.is_set():
        rec.request(client, "probe", "GET", "/api/me", caller)
        time.sleep(0.1)


def until(check: Callable[[], bool], timeout: float = RECOVERY_TIMEOUT) -> float | None:
    """Seconds until ``check()`` is true (None if it never was within ``timeout``)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        try:
            if check():
                return round(time.monotonic() - began, 1)
        except Exception:  # the part is still down: keep asking
            pass
        time.sleep(0.5)
    return None


def works_again(since: datetime) -> Callable[[], bool]:
    """Whether the gpu worker's pool took a task (a fit) again after ``since``: it records a
    finished task, or a beat while one runs, for /healthz. A round trip of our own would wait
    behind the queued fits instead."""
    from django.db.models import Q

    from apps.health.models import QueueActivity

    def check() -> bool:
        close_old_connections()
        again = Q(finished_at__gt=since) | Q(busy_at__gt=since)
        return QueueActivity.objects.filter(again, queue="gpu").exists()

    return check


def job_done(job: int | None) -> Callable[[], bool]:
    from apps.adapters.models import FitJob

    def check() -> bool:
        close_old_connections()
        return job is None or FitJob.objects.get(pk=job).status == FitJob.Status.SUCCEEDED

    return check


_fit_turn = iter(range(10**6))


def fit_running(client: Client, people: People) -> int | None:
    """Ask a fit (the API, as a person does) and wait until a worker runs it; its job id."""
    from apps.adapters.models import FitJob

    close_old_connections()
    caller = people.callers[next(_fit_turn) % FIT_USERS]
    answer = client.post("/api/fit-jobs", headers=caller.headers(), json={})
    if answer.status_code not in (200, 201, 202):
        return None
    job = answer.json()["id"]
    until(lambda: FitJob.objects.get(pk=job).status != FitJob.Status.QUEUED, timeout=120)
    return job


def _after(at: float, rec: Recorder, waited: float | None) -> float | None:
    """Seconds from the fault at ``at`` to now, when the wait that just ended succeeded."""
    return None if waited is None else round(rec.now() - at, 1)


def _fault(name: str, began: float, recovery: float | None, **extra: Any) -> dict[str, Any]:
    return {"fault": name, "at": round(began, 1), "recovery_seconds": recovery, **extra}


def kill_pool(platform: Platform, db: Database, people: People, client: Client, rec: Recorder):
    job = fit_running(client, people)
    main = platform.part(" -Q gpu ")
    pool = children(main)
    at, since = rec.now(), timezone.now()
    for pid in pool:
        os.kill(pid, signal.SIGKILL)
    recovery = until(works_again(since))
    return _fault("pool processes", at, recovery, killed=len(pool), job=job,
                  job_done_after=_after(at, rec, until(job_done(job))))  # fmt: skip


def kill_worker(platform: Platform, db: Database, people: People, client: Client, rec: Recorder):
    job = fit_running(client, people)
    at, since = rec.now(), timezone.now()
    os.kill(platform.part(" -Q gpu "), signal.SIGKILL)
    recovery = until(works_again(since))
    return _fault("worker main process", at, recovery, job=job,
                  job_done_after=_after(at, rec, until(job_done(job))))  # fmt: skip


def kill_serving(platform: Platform, db: Database, people: People, client: Client, rec: Recorder):
    at = rec.now()
    os.kill(platform.part("workers.serving"), signal.SIGKILL)
    body = {"model": "attune", "messages": [{"role": "user", "content": "Hi."}], "max_tokens": 4}
    headers = people.callers[-1].headers()
    recovery = until(lambda: client.post("/v1/chat/completions", headers=headers, json=body).ok)
    end = at + (recovery if recovery is not None else RECOVERY_TIMEOUT)
    return _fault("serving process", at, recovery, window=[at, end])


def stop_database(platform: Platform, db: Database, people: People, client: Client, rec: Recorder):
    at = rec.now()
    db.stop()
    time.sleep(DATABASE_DOWN_SECONDS)
    db.start()
    back = rec.now()
    headers = people.callers[-1].headers()
    recovery = until(lambda: client.get("/api/me", headers=headers).ok)
    end = back + (recovery if recovery is not None else RECOVERY_TIMEOUT)
    return _fault("database stopped 15 s", back, recovery, window=[at, end])


FAULTS = (kill_pool, kill_worker, kill_serving, stop_database)


def verify(rec: Recorder, timeout: float) -> dict[str, Any]:
    """Jobs finished exactly once; every acknowledged write is a row; the request tallies."""
    from django.db.models import Count

    from apps.adapters.models import FitJob
    from apps.feedback.models import Edit, Interaction, Rating

    close_old_connections()
    open_jobs = FitJob.objects.filter(status__in=[FitJob.Status.QUEUED, FitJob.Status.RUNNING])
    until(lambda: not open_jobs.exists(), timeout=timeout)
    jobs = FitJob.objects.filter(kind=FitJob.Kind.USER_ADAPTER).annotate(
        versions=Count("adapter_version")
    )
    once = jobs.filter(status=FitJob.Status.SUCCEEDED, versions=1).count()
    models = {"interaction": Interaction, "rating": Rating, "edit": Edit}
    acknowledged = {name: [pk for m, pk in rec.acknowledged if m == name] for name in models}
    rows = {
        name: models[name].objects.filter(pk__in=ids).count() for name, ids in acknowledged.items()
    }
    return {
        "jobs": {
            "submitted": jobs.count(),
            "completed_once": once,
            "failed": jobs.filter(status=FitJob.Status.FAILED).count(),
            "still_open": open_jobs.count(),
            "errors": sorted({e for e in jobs.exclude(error="").values_list("error", flat=True)})[
                :5
            ],
        },
        "writes": {
            "acknowledged": sum(len(ids) for ids in acknowledged.values()),
            "rows": sum(rows.values()),
        },
        "samples": rec.samples,
    }
