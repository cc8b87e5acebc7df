"""The checks behind /healthz, and how they add up to one status.

``report`` runs them all: database, pgvector, broker, workers (heartbeats), queues (a round trip
through each, ``apps.health.queues``) and the serving replicas. Its ``status`` is ``ok``,
``degraded`` (everything works, but some serving replica is down or loading), ``loading`` (no
replica can generate yet, one is preparing its model) or ``error``; the HTTP code is 200 for the
first two and 503 for the others.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.utils import timezone

REQUIRED_QUEUES = ("default", "gpu")


def redact(url: str) -> str:
    """A broker or database URL without its password."""
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)


def database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            version = cursor.fetchone()[0]
        return {"ok": True, "version": version.split(" on ")[0]}
    except Exception as err:  # any failure to reach the database is a failed check, not a 500
        return {"ok": False, "error": str(err).strip().splitlines()[0]}


def pgvector() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
            if row:
                return {"ok": True, "version": row[0]}
            cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            available = cursor.fetchone() is not None
        hint = "run migrations" if available else "install pgvector on this server"
        return {"ok": False, "error": f"the vector extension is not enabled ({hint})"}
    except Exception as err:
        return {"ok": False, "error": str(err).strip().splitlines()[0]}


def broker(timeout: float = 3.0) -> dict[str, Any]:
    from attune.celery import app

    url = redact(app.conf.broker_url)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return {"ok": True, "url": url}
    except Exception as err:
        return {"ok": False, "url": url, "error": str(err).strip().splitlines()[0]}


def workers() -> dict[str, Any]:
    from apps.health.models import WorkerHeartbeat

    try:
        cutoff = timezone.now() - timedelta(seconds=settings.ATTUNE_WORKER_STALE_SECONDS)
        live = list(WorkerHeartbeat.objects.filter(last_seen_at__gte=cutoff).order_by("hostname"))
    except Exception as err:
        return {"ok": False, "error": str(err).strip().splitlines()[0], "workers": []}
    served = {q for w in live for q in w.queues}
    missing = [q for q in REQUIRED_QUEUES if q not in served]
    now = timezone.now()
    result: dict[str, Any] = {
        "ok": not missing,
        "workers": [
            {
                "hostname": w.hostname,
                "queues": w.queues,
                "seconds_since_heartbeat": round((now - w.last_seen_at).total_seconds(), 1),
            }
            for w in live
        ],
    }
    if missing:
        result["error"] = f"no live worker consumes queue(s): {', '.join(missing)}"
    return result


def serving() -> dict[str, Any]:
    """Every serving replica (``ATTUNE_SERVING_URLS``) with its state: ``ok``, ``loading`` or
    ``down``; ``ok`` here when at least one replica is up, since the web sends each request to a
    replica that is."""
    from apps.generation.client import statuses

    replicas: list[dict[str, Any]] = []
    for replica in statuses():
        url = redact(replica.url) if urlsplit(replica.url).password else replica.url
        entry: dict[str, Any] = {"url": url, "state": replica.state}
        health = replica.health or {}
        if health.get("base_model"):
            entry["base_model"] = health["base_model"]
        if isinstance(health.get("loading"), dict):  # preparing its model: how far
            entry["loading"] = health["loading"]
        if error := replica.error or health.get("error"):
            entry["error"] = error
        replicas.append(entry)
    result: dict[str, Any] = {"ok": any(r["state"] == "ok" for r in replicas), "replicas": replicas}
    if not result["ok"]:
        result["error"] = "no serving replica is up: generation answers 503"
    return result


def queues(served: set[str]) -> dict[str, Any]:
    """A round trip through each required queue that a live worker consumes (the others are
    already reported by ``workers``)."""
    from apps.health.queues import round_trips

    try:
        found = round_trips([q for q in REQUIRED_QUEUES if q in served])
    except Exception as err:  # a database or broker failure mid-way is a failed check
        return {"ok": False, "error": str(err).strip().splitlines()[0], "queues": {}}
    for queue in REQUIRED_QUEUES:
        found.setdefault(queue, {"ok": False, "state": "no worker", "error": "no live worker"})
    result: dict[str, Any] = {"ok": all(q["ok"] for q in found.values()), "queues": found}
    if not result["ok"]:
        bad = [q for q, entry in found.items() if not entry["ok"]]
        result["error"] = f"no round trip through queue(s): {', '.join(bad)}"
    return result


def versions() -> dict[str, str]:
    """What runs here (detailed answers only: versions help an attacker more than a user)."""
    import platform as stdlib_platform
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": stdlib_platform.python_version()}
    for package in ("Django", "djangorestframework", "celery", "kombu"):
        with contextlib.suppress(PackageNotFoundError):
            found[package.lower()] = version(package)
    return found


def _down(why: str) -> dict[str, Any]:
    return {"ok": False, "error": why}


def all_checks() -> dict[str, dict[str, Any]]:
    checks = {"database": database()}
    db_ok = checks["database"]["ok"]
    checks["pgvector"] = pgvector() if db_ok else _down("database unreachable")
    checks["broker"] = broker()
    checks["workers"] = workers() if db_ok else _down("database unreachable")
    if db_ok and checks["broker"]["ok"]:
        checks["queues"] = queues({q for w in checks["workers"]["workers"] for q in w["queues"]})
    else:
        checks["queues"] = _down("database or broker unreachable")
    return checks


def status_of(checks: dict[str, dict[str, Any]], replicas: dict[str, Any]) -> str:
    """One word for the whole platform. Serving counts: without a replica that is up,
    generation (the product) answers 503, so /healthz does too (``loading`` while one prepares
    its model, so a rollout waits for it instead of paging anyone)."""
    if not all(check["ok"] for check in checks.values()):
        return "error"
    states = [r["state"] for r in replicas["replicas"]]
    if "ok" not in states:
        return "loading" if "loading" in states else "error"
    return "ok" if all(state == "ok" for state in states) else "degraded"


HTTP_STATUS = {"ok": 200, "degraded": 200, "loading": 503, "error": 503}


def report() -> dict[str, Any]:
    """Every check, the serving replicas, versions and the overall ``status``."""
    checks = all_checks()
    replicas = serving()
    status = status_of(checks, replicas)
    return {"status": status, "checks": checks, "serving": replicas, "versions": versions()}
