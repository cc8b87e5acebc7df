"""The soak benchmark's scratch platform, its people, the faults it injects and the checks after.

The bench owns the database server (so it can stop it) and runs ``./attune run`` on it as one
child process; the platform's parts are found among that process's children by command line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from django.db import close_old_connections
from django.utils import timezone

from bench._soak_load import Caller, Client, Recorder

ROOT = Path(__file__).resolve().parents[1]
FIT_USERS, FIT_EDITS = 4, 16
RECOVERY_TIMEOUT = 300.0
DATABASE_DOWN_SECONDS = 15.0


class Database:
    """An embedded PostgreSQL server in a folder of the bench's own."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.url = ""

    def start(self) -> str:
        from attune import embedded_db

        self.url, _ = embedded_db.start(self.pgdata)
        return self.url

    def stop(self) -> None:
        from attune import embedded_db

        if self.pgdata.exists():
            embedded_db.stop(self.pgdata)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Platform:
    """``./attune run`` on the scratch database, with its own var dir and ports."""

    def __init__(self, var: Path, database_url: str, health_token: str) -> None:
        self.var, self.database_url, self.health_token = var, database_url, health_token
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, log: Path) -> None:
        from attune.cli import python_env

        env = python_env(
            ATTUNE_VAR_DIR=str(self.var),
            DATABASE_URL=self.database_url,
            ATTUNE_SERVING_PORT=str(free_port()),
            ATTUNE_HEALTH_TOKEN=self.health_token,
        )
        env.pop("CELERY_BROKER_URL", None)  # the broker is the scratch database
        for own in ("ATTUNE_ARTIFACT_STORE", "ATTUNE_ARTIFACT_CACHE_DIR", "ATTUNE_ADAPTER_ROOT"):
            env.pop(own, None)
        command = [sys.executable, "-m", "attune.cli", "run", "--port", str(self.port)]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
            )

    def wait_ready(self, timeout: float) -> None:
        """Until the web answers, the health check is ok and a generation is answered."""
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.health_token}"}
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("./attune run exited while starting (see platform.log)")
            with contextlib.suppress(requests.RequestException):
                if Client(self.base_url, timeout=10).get("/healthz", headers=headers).ok:
                    return
            time.sleep(1)
        raise RuntimeError(f"the platform was not healthy within {timeout:.0f} s")

    def part(self, needle: str) -> int:
        """The pid of the runner's child whose command line contains ``needle``."""
        assert self.proc is not None
        for pid in children(self.proc.pid):
            if needle in cmdline(pid):
                return pid
        raise RuntimeError(f"no running part matches {needle!r}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(stat[1]) == parent:
                found.append(int(entry.name))
    return found


def prepare_model(var: Path, mode: str) -> str:
    """The built-in model for the platform: this machine's built one, or a small one."""
    from core import config
    from workers.modeling.style_lm import StyleLMConfig, ensure_style_lm, is_built, style_lm_dir

    built = style_lm_dir(config.var_dir())
    if mode in ("auto", "built") and is_built(built):
        shutil.copytree(built, style_lm_dir(var))
        return f"built ({built})"
    if mode == "built":
        raise SystemExit(f"no built model at {built}; run with --model small")
    small = StyleLMConfig(hidden_size=64, num_heads=2, intermediate_size=128, vocab_size=800,
                          steps=40, tokenizer_examples=300, prose_paragraphs=200)  # fmt: skip
    ensure_style_lm(small, var=var, progress=False)
    return "small (built in this run)"


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
