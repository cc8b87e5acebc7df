"""Start-up checks that turn a wrong configuration into one clear line instead of a traceback."""

from __future__ import annotations

import os


class PreflightError(Exception):
    """A configuration problem; the message says what is wrong and how to fix it."""


def _redact(url: str) -> str:
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)


def check_database(url: str) -> None:
    """The database answers and has (or can enable) pgvector."""
    import psycopg

    where = _redact(url)
    how = "check DATABASE_URL (postgresql://USER:PASSWORD@HOST:5432/NAME)" + (
        " or unset it to use the embedded database" if os.environ.get("DATABASE_URL") else ""
    )
    try:
        conninfo = url.replace("postgres://", "postgresql://", 1)
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
    except (psycopg.Error, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PreflightError(f"cannot reach the database at {where}: {reason}; {how}") from err
    if row is None:
        raise PreflightError(
            f"the PostgreSQL at {where} has no pgvector extension; install pgvector there "
            "(for example the pgvector/pgvector image) or unset DATABASE_URL to use the embedded "
            "database, which ships it"
        )


def check_broker(url: str, timeout: float = 3.0) -> None:
    """The Celery broker answers."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as err:  # kombu raises transport-specific errors
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PreflightError(
            f"cannot reach the Celery broker at {_redact(url)}: {reason}; start it, fix "
            "CELERY_BROKER_URL, or unset CELERY_BROKER_URL to use the database as the broker"
        ) from err
