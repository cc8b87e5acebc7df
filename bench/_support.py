"""What several benchmarks need: a scratch database on Attune's server, and CPU time per process.

A scratch database lives beside Attune's own on the same server (the embedded one is started when
down, and stopped when this process exits unless another process still uses it), and is dropped
afterwards unless kept. CPU times come from Linux's ``/proc``.
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def server_url() -> str:
    """Attune's database URL: ``DATABASE_URL``, else the embedded server (started if down)."""
    if url := os.environ.get("DATABASE_URL"):
        return url
    from attune import embedded_db

    return embedded_db.ensure_for_process()


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def admin_sql(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def scratch_database(name: str, keep: bool = False) -> Iterator[str]:
    """A fresh database ``name`` on Attune's server (never Attune's own); its URL. Dropped
    afterwards, with this process's Django connections closed first, unless ``keep``."""
    base = server_url()
    admin_sql(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin_sql(base, f"CREATE DATABASE {name}")
    try:
        yield with_database(base, name)
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not keep:
            admin_sql(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (None when the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each process that still runs, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        if (fields := proc_stat(pid)) is not None:
            found[pid] = (int(fields[11]) + int(fields[12])) / tick
    return found


def percentile(values: list[float], q: int) -> float:
    """The ``q``-th percentile (inclusive method: p100 is the maximum); NaN when empty."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]
