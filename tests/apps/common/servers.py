"""Real processes for the error-handling tests: gunicorn (as ``./attune run`` starts the web) and a
stand-in for the database socket that a test can take away, as a stopped server does.

The test database stays up (the rest of the session needs it); gunicorn reaches it through
:class:`PostgresProxy`, a Unix socket that forwards to PostgreSQL's. ``stop()`` drops every
connection and removes the socket, exactly what clients see when the server stops; ``start()``
brings it back.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

from tests.support.processes import (
    ROOT,
    database_url_for_tests,
    free_port,
    project_env,
    stop,
    wait_for_other_sessions_to_close,
)


class PostgresProxy:
    """A Unix socket in ``directory`` named as PostgreSQL names its own, forwarding to it."""

    def __init__(self, directory: Path) -> None:
        settings = connection.settings_dict
        port = settings["PORT"] or 5432
        self.server_dir = str(settings["HOST"])
        self.target = f"{self.server_dir}/.s.PGSQL.{port}"
        self.directory = directory
        self.path = directory / f".s.PGSQL.{port}"
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()

    @property
    def database_url(self) -> str:
        """The test database's URL, through this proxy."""
        return database_url_for_tests().replace(self.server_dir, str(self.directory))

    def start(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """The database goes away: no socket, every open connection cut."""
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        self.path.unlink(missing_ok=True)
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by stop()
                return
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(self.target)
            with self.lock:
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | list[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One HTTP request; a list body is sent chunked (``Transfer-Encoding: chunked``, no
    ``Content-Length``), one chunk per item."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        if isinstance(body, list):
            conn.request(method, path, body=iter(body), headers=headers or {}, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


@contextlib.contextmanager
def gunicorn(database_url: str | None = None, threads: int = 2, **env: str) -> Iterator[str]:
    """``gunicorn attune.wsgi`` (one worker, ``threads`` threads: the gthread worker ``./attune
    run`` uses) on the test database or ``database_url``; yields its URL once it answers."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "gunicorn"), "attune.wsgi", "--bind",
               f"127.0.0.1:{port}", "--workers", "1", "--threads", str(threads)]  # fmt: skip
    environment = project_env(
        DATABASE_URL=database_url or database_url_for_tests(), ATTUNE_LOG_LEVEL="WARNING", **env
    )
    process = subprocess.Popen(command, cwd=ROOT, env=environment, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            with contextlib.suppress(OSError):
                request(url, "GET", "/static/attune/app.css")
                break
            time.sleep(0.2)
        yield url
    finally:
        stop(process)
        wait_for_other_sessions_to_close()
