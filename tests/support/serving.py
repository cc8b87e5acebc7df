"""A real serving process (``python -m workers.serving``) for tests: on the test database, with a
built style model in ``var`` as its base model, stopped afterwards once its database sessions
are gone (so the test database can be flushed and dropped)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from tests.support.processes import ROOT, database_url_for_tests, project_env

APPLICATION_NAME = "attune-test-serving"  # its database sessions, told apart from any other
START_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path | None = None) -> None:
    """Until ``url/healthz`` says ok; RuntimeError (with the log's tail) when it exits or hangs."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the serving process exited with {process.returncode}{_tail(log)}")
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer,
        ):
            if json.loads(answer.read()).get("status") == "ok":
                return
        time.sleep(0.2)
    raise RuntimeError(f"the serving process did not come up in {START_TIMEOUT_S} s{_tail(log)}")


def wait_for_its_sessions_to_close(timeout: float = 10.0) -> None:
    """Until the stopped serving process's database sessions are gone."""
    from django.db import connection

    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                [APPLICATION_NAME],
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)


def _tail(log: Path | None, chars: int = 4000) -> str:
    if log is None or not log.is_file():
        return ""
    return ":\n" + log.read_text(errors="replace")[-chars:]


@contextlib.contextmanager
def serving_process(
    var: Path,
    key: str,
    secret_key: str,
    log: Path | None = None,
    database_access: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
    **settings: str,
) -> Iterator[tuple[str, Path]]:
    """Start the serving process on the style model built in ``var`` (adapters under
    ``var/adapters``); yields (its URL, the adapter root). ``settings`` are more ``ATTUNE_…``
    environment variables; ``database_access`` opens the test database for the final wait
    (``django_db_blocker.unblock`` outside a test)."""
    adapter_root = var / "adapters"
    adapter_root.mkdir(exist_ok=True)
    port = free_port()
    database_url = database_url_for_tests()
    database_url += ("&" if "?" in database_url else "?") + f"application_name={APPLICATION_NAME}"
    env = project_env(
        DATABASE_URL=database_url,
        ATTUNE_VAR_DIR=str(var),
        ATTUNE_ADAPTER_ROOT=str(adapter_root),
        ATTUNE_SERVING_KEY=key,
        ATTUNE_SERVING_PORT=str(port),
        ATTUNE_SERVING_THREADS="1",
        DJANGO_SECRET_KEY=secret_key,
        ATTUNE_LOG_LEVEL="WARNING",
        **settings,
    )
    env.pop("ATTUNE_BASE_MODEL", None)  # the built-in style model: the build in ``var``
    with open(log, "wb") if log else contextlib.nullcontext() as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.serving"], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT if out else None, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log)
        yield url, adapter_root
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with database_access():
            wait_for_its_sessions_to_close()
