"""Real processes for tests: a Celery worker on the test database, the CLI."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from core import config

ROOT = Path(__file__).resolve().parents[2]
# One Redis database per var dir (8 to 15), so test sessions that run side by side with their own
# ATTUNE_VAR_DIR do not consume each other's queued tasks; CI runs one session (its var dir).
_REDIS_DB = 8 + int(hashlib.sha256(str(config.var_dir()).encode()).hexdigest(), 16) % 8
REDIS_URL = os.environ.get("ATTUNE_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{_REDIS_DB}")


def project_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CELERY_BROKER_URL", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "platform")])
    env["DJANGO_SETTINGS_MODULE"] = "attune.settings"
    env.update(extra)
    return env


def database_url_for_tests() -> str:
    """A URL for the database this test session uses (pytest-django's test_… database)."""
    s = connection.settings_dict
    host = s["HOST"] or ""
    if host.startswith("/"):
        return f"postgresql://{s['USER']}@/{s['NAME']}?host={host}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgresql://{auth}@{host}:{s['PORT'] or 5432}/{s['NAME']}"


def database_broker_url() -> str:
    """kombu's SQLAlchemy transport on the test database (the default broker, for tests)."""
    return "sqla+" + database_url_for_tests().replace("postgresql://", "postgresql+psycopg://", 1)


@contextmanager
def project_celery(broker_url: str) -> Iterator[object]:
    """Attune's own Celery app sending to ``broker_url`` (services that queue tasks reach a
    worker started by the test), its queues emptied first; put back afterwards."""
    import kombu.pools
    from sqlalchemy.pool import NullPool

    from attune.celery import app

    def drop_pools() -> None:  # pooled connections and producers keep their broker
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None
        kombu.pools.reset()  # producer pools are global, by connection

    before = app.conf.broker_url, app.conf.broker_transport_options
    drop_pools()
    app.conf.broker_url = broker_url
    # kombu keeps its SQLAlchemy session open; NullPool closes the connection after each use.
    app.conf.broker_transport_options = (
        {"poolclass": NullPool} if broker_url.startswith("sqla+") else {}
    )
    with app.connection_for_write() as conn:  # earlier tests' tasks must not run here
        for queue in ("default", "gpu"):
            conn.default_channel.queue_purge(queue)
    try:
        yield app
    finally:
        drop_pools()
        app.conf.broker_url, app.conf.broker_transport_options = before


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a process started in a session of its own: SIGTERM, SIGKILL after ``timeout``, then
    whatever of its group outlived it (a worker's pool children)."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def celery_worker(
    broker_url: str | None = None,
    include: str = "",
    concurrency: int = 1,
    beat_schedule: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen]:
    """A real `celery worker` process (prefork, both queues) on the test database; with
    ``beat_schedule`` (a file path) it runs Celery beat inside too (``-B``), and ``env`` adds
    to its environment (settings)."""
    extra = {"DATABASE_URL": database_url_for_tests(), **(env or {})}
    if broker_url:
        extra["CELERY_BROKER_URL"] = broker_url
    command = [
        str(Path(sys.executable).parent / "celery"), "-A", "attune", "worker",
        "-Q", "default,gpu,maintenance", "-c", str(concurrency), "-n", f"test-{os.getpid()}@%h",
        "--loglevel", os.environ.get("ATTUNE_TEST_WORKER_LOGLEVEL", "WARNING"),
    ]  # fmt: skip
    if include:
        command += ["--include", include]
    if beat_schedule is not None:
        command += ["-B", "-s", str(beat_schedule)]
    proc = subprocess.Popen(command, cwd=ROOT, env=project_env(**extra), start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc)


def child_pids(pid: int) -> list[int]:
    """The direct children of process ``pid`` (a prefork worker's pool processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in children.read_text().split()] if children.exists() else []


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_other_sessions_to_close(timeout: float = 10.0) -> None:
    """Wait until no other process holds a session on the test database (so it can be dropped)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)


def imports_torch(*modules: str, code: str = "") -> bool:
    """Whether a fresh Django process that runs ``code`` and imports ``modules`` has torch
    loaded (the web side must not); fails the test with its stderr when the process fails."""
    script = (
        f"import sys, django; django.setup(); {code}\n"
        + "".join(f"import {module}\n" for module in modules)
        + "print('torch loaded' if 'torch' in sys.modules else 'torch-free')"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=project_env(), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1] != "torch-free"
