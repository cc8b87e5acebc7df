"""A real serving process (``python -m workers.serving``) for tests: on the test database, with a
built style model in ``var`` as its base model, stopped afterwards once its database sessions
are gone (so the test database can be flushed and dropped); several as replicas; and stand-ins
that speak its protocol without a model, for tests of the web side's routing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

from core import config
from tests.support.processes import ROOT, database_url_for_tests, free_port, project_env
from workers.serving.server import JSONHandler

APPLICATION_NAME = "attune-test-serving"  # its database sessions, told apart from any other
START_TIMEOUT_S = 180


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


@dataclass
class ServingProcess:
    """A started serving process: its URL, adapter root and process (``kill()`` SIGKILLs it)."""

    url: str
    adapter_root: Path
    process: subprocess.Popen
    log: Path | None = None

    def wait_until_up(self) -> None:
        wait_until_up(self.url, self.process, self.log)

    def kill(self) -> None:
        """SIGKILL, as a crash would; returns once it is gone."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def start_serving(
    var: Path,
    key: str,
    secret_key: str,
    log: Path | None = None,
    command: Callable[[int], list[str]] | None = None,
    **settings: str,
) -> ServingProcess:
    """Start (without waiting for it) a serving process on the style model built in ``var``
    (adapters under ``var/adapters``); ``settings`` are more ``ATTUNE_…`` environment variables;
    ``command`` makes the command line for the port (default ``python -m workers.serving``).
    The test database must be the one ``DATABASE_URL`` names (see :func:`serving_process`)."""
    adapter_root = var / "adapters"
    adapter_root.mkdir(exist_ok=True)
    port = free_port()
    database_url = database_url_for_tests()
    database_url += ("&" if "?" in database_url else "?") + f"application_name={APPLICATION_NAME}"
    env = project_env(
        DATABASE_URL=database_url,
        ATTUNE_VAR_DIR=str(var),
        ATTUNE_ADAPTER_ROOT=str(adapter_root),
        ATTUNE_ARTIFACT_STORE=config.artifact_location(),  # the test's store, the node's own cache
        ATTUNE_SERVING_KEY=key,
        ATTUNE_SERVING_PORT=str(port),
        ATTUNE_SERVING_THREADS="1",
        DJANGO_SECRET_KEY=secret_key,
        ATTUNE_LOG_LEVEL="WARNING",
        ATTUNE_ARBITRATION="false",  # as in tests/settings.py: the layers of an answer are fixed
        **settings,
    )
    if "ATTUNE_BASE_MODEL" not in settings:
        env.pop("ATTUNE_BASE_MODEL", None)  # the built-in style model: the build in ``var``
    with open(log, "wb") if log else contextlib.nullcontext() as out:
        process = subprocess.Popen(
            command(port) if command else [sys.executable, "-m", "workers.serving"],
            cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT if out else None, start_new_session=True,
        )  # fmt: skip
    return ServingProcess(f"http://127.0.0.1:{port}", adapter_root, process, log)


@contextlib.contextmanager
def serving_processes(
    count: int,
    var: Path,
    key: str,
    secret_key: str,
    logs: Sequence[Path] | None = None,
    database_access: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
    **settings: str,
) -> Iterator[list[ServingProcess]]:
    """``count`` serving processes (replicas) started side by side, as :func:`serving_process`
    starts one; each is stopped afterwards (a test may ``kill()`` one first)."""
    started: list[ServingProcess] = []
    try:
        for i in range(count):
            log = logs[i] if logs else None
            started.append(start_serving(var, key, secret_key, log, **settings))
        for replica in started:
            replica.wait_until_up()
        yield started
    finally:
        for replica in started:
            replica.stop()
        with database_access():
            wait_for_its_sessions_to_close()


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
    logs = [log] if log else None
    with serving_processes(1, var, key, secret_key, logs, database_access, **settings) as started:
        yield started[0].url, started[0].adapter_root


# --- stand-ins: replicas that speak the serving protocol without a model (routing tests)


class StandInHandler(JSONHandler):
    server: StandIn

    def do_GET(self) -> None:
        health = {"status": "loading" if self.server.mode == "loading" else "ok"}
        self._json(503 if self.server.mode == "loading" else 200, health)

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        given = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if given != self.server.key:
            self._json(401, {"error": {"message": "Invalid serving key.", "type": "x"}})
            return
        mode = self.server.mode
        self.server.users.append(int(payload["user_id"]))
        if mode == "loading":
            message = "The model is still loading."
            error = {"message": message, "type": "service_unavailable_error"}
            self._json(503, {"error": {**error, "param": None, "code": "serving_unavailable"}})
            return
        if mode == "database":  # its database went away (as the real one answers then)
            error = {"message": "The database is unavailable.", "type": "service_unavailable_error"}
            self._json(503, {"error": {**error, "param": None, "code": "database_unavailable"}})
            return
        if mode == "refuse":
            error = {"message": "Too long.", "type": "invalid_request_error", "param": "messages"}
            self._json(400, {"error": {**error, "code": "context_length_exceeded"}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        start = {"type": "start", "id": "chatcmpl-x", "created": 0, "model": "attune", "n": 1}
        self.wfile.write(json.dumps(start).encode() + b"\n")
        self.wfile.flush()
        if mode == "cut":  # dies mid-answer: the connection is reset
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        text = self.server.url
        self.wfile.write(json.dumps({"type": "delta", "index": 0, "text": text}).encode() + b"\n")
        done = {
            "type": "done", "id": "chatcmpl-x", "created": 0, "model": "attune",
            "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            "attune": {},
        }  # fmt: skip
        self.wfile.write(json.dumps(done).encode() + b"\n")


class StandIn(ThreadingHTTPServer):
    """A loopback replica that speaks the serving protocol (``/healthz``, JSON Lines from
    ``/internal/generate``) with no model: it answers its own URL as the text and records each
    request's user id in ``users``. ``mode``: ``ok``; ``loading`` (503 to everything);
    ``database`` (503 database_unavailable); ``refuse`` (a 400); ``cut`` (200 and a start event,
    then the connection drops)."""

    daemon_threads = True

    def __init__(self, key: str) -> None:
        super().__init__(("127.0.0.1", 0), StandInHandler)
        self.key = key
        self.mode = "ok"
        self.users: list[int] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening: connections are refused from now on."""
        self.shutdown()
        self.server_close()


@contextlib.contextmanager
def stand_ins(count: int, key: str) -> Iterator[list[StandIn]]:
    replicas = [StandIn(key) for _ in range(count)]
    try:
        yield replicas
    finally:
        for replica in replicas:
            with contextlib.suppress(OSError):
                replica.stop()
