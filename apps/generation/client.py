"""The web side's connection to the serving processes (standard library HTTP; torch-free).

A serving process (``python -m workers.serving``; ``./attune run`` starts one) listens on
``ATTUNE_SERVING_URL`` (default ``http://127.0.0.1:8300``); ``ATTUNE_SERVING_URLS`` names several
replicas instead. A request is one POST to ``/internal/generate`` carrying the already
authenticated user's id; the answer is JSON Lines events (``start``, ``delta``, ``done``, or
``error``), or an error status with an OpenAI-style error body. The shared key
``ATTUNE_SERVING_KEY`` (derived from ``SECRET_KEY`` unless set) proves the caller is Attune's web
process.

Routing: each user goes to the replica that ranks first for them by rendezvous
(highest-random-weight) hashing, so their composed adapter stays cached there, and adding or
removing a replica moves only that replica's users. When that replica cannot be reached (refused,
reset, connect timeout) or answers 503 before its answer starts, the request goes to the next
replica in the user's order, and the failed one is skipped for ``ATTUNE_SERVING_SKIP_SECONDS``
(this process's small circuit breaker). Once a replica has answered 200 nothing is retried: a
generation is never run twice.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from django.conf import settings

from core.errors import GenerationError, unavailable
from core.serving import GENERATE_PATH, GenerateRequest, serving_key

log = logging.getLogger(__name__)
HEALTH_TIMEOUT_S = 3.0
START_HINT = "it starts with './attune run' (or 'python -m workers.serving')"

ReplicaState = Literal["ok", "loading", "down"]


class EventStream:
    """An open generation: iterate for its events; ``close()`` cancels it."""

    def __init__(self, connection: http.client.HTTPConnection, response: Any, url: str) -> None:
        self._connection = connection
        self._response = response
        self.url = url  # the replica generating it

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for line in self._response:
                if line.strip():
                    yield json.loads(line)
        except (OSError, http.client.HTTPException, ValueError) as err:
            raise unavailable(f"The generation service stopped mid-answer: {err}") from err
        finally:
            self.close()

    def close(self) -> None:
        self._connection.close()


# --- which replica


def replica_urls() -> list[str]:
    """The serving replicas: ``ATTUNE_SERVING_URLS``, else the one ``ATTUNE_SERVING_URL``."""
    return list(settings.ATTUNE_SERVING_URLS) or [settings.ATTUNE_SERVING_URL]


def _weight(user_id: int, url: str) -> int:
    digest = hashlib.blake2b(f"{url}\n{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_order(user_id: int, urls: Sequence[str]) -> list[str]:
    """``urls`` from the user's first choice to their last (highest random weight first): the
    same on every web process, and a replica added or removed changes only its own users'
    first choice."""
    return sorted(urls, key=lambda url: (_weight(user_id, url), url), reverse=True)


class _Breaker:
    """Replicas that failed lately, skipped until their time is up (per process, thread-safe)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def trip(self, url: str) -> None:
        with self._lock:
            self._until[url] = time.monotonic() + settings.ATTUNE_SERVING_SKIP_SECONDS

    def reset(self, url: str) -> None:
        with self._lock:
            self._until.pop(url, None)

    def resting(self, url: str) -> bool:
        with self._lock:
            return self._until.get(url, 0.0) > time.monotonic()

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


breaker = _Breaker()


def _candidates(user_id: int) -> list[str]:
    """The order to try: the user's rendezvous order, replicas that failed lately last."""
    order = rendezvous_order(user_id, replica_urls())
    return sorted(order, key=breaker.resting)  # stable: each group keeps the user's order


# --- generating


class _NotTaken(Exception):
    """The replica did not take the request (unreachable, or 503 before answering): the next
    one may. ``preparing`` holds its own message when it said its model is being prepared."""

    def __init__(self, reason: str, preparing: str = "") -> None:
        super().__init__(reason)
        self.preparing = preparing


def open_stream(request: GenerateRequest) -> EventStream:
    """Send one generation to the user's serving replica (or the next that answers); raises
    :class:`GenerationError` when it refuses the request (its status and message) or when no
    replica can be reached (503).

    While no replica takes it (a serving process restarting after a crash: refused, then loading
    its model for a few seconds) the request waits up to ``ATTUNE_SERVING_WAIT_SECONDS`` for one
    to come back, asking again every half second, rather than failing at once."""
    deadline = time.monotonic() + settings.ATTUNE_SERVING_WAIT_SECONDS
    while True:
        try:
            return _open_any(request)
        except GenerationError as err:
            if err.code not in _WAIT_FOR or time.monotonic() + _RETRY_EVERY_S > deadline:
                raise
        time.sleep(_RETRY_EVERY_S)


_RETRY_EVERY_S = 0.5
_WAIT_FOR = {"serving_unavailable", "model_loading"}  # none took it: one may come back


def _open_any(request: GenerateRequest) -> EventStream:
    body = json.dumps(request.to_payload()).encode()
    key = serving_key(settings.SECRET_KEY, settings.ATTUNE_SERVING_KEY)
    failures: list[tuple[str, str]] = []
    preparing = ""
    for url in _candidates(request.user_id):
        try:
            return _open(url, body, key)
        except _NotTaken as err:
            breaker.trip(url)
            failures.append((url, str(err)))
            preparing = preparing or err.preparing
            log.warning("serving replica %s did not take a request (%s)", url, err)
    if preparing:  # up, but its model is not ready yet: say so, not "not reachable"
        raise unavailable(preparing, code="model_loading")
    if len(failures) == 1:
        url, reason = failures[0]
        raise unavailable(
            f"The generation service at {url} is not reachable ({reason}); {START_HINT}."
        )
    reasons = "; ".join(f"{url}: {reason}" for url, reason in failures)
    raise unavailable(f"No generation service is reachable ({reasons}); {START_HINT}.")


def _open(url: str, body: bytes, key: str) -> EventStream:
    parts = urlsplit(url)
    timeout = settings.ATTUNE_SERVING_CONNECT_TIMEOUT
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port or 80, timeout
    )
    try:
        connection.connect()
    except OSError as err:  # refused, unreachable, connect timeout
        connection.close()
        raise _NotTaken(str(err) or type(err).__name__) from err
    connection.sock.settimeout(settings.ATTUNE_SERVING_TIMEOUT)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    try:
        connection.request("POST", GENERATE_PATH, body=body, headers=headers)
        response = connection.getresponse()
    except TimeoutError as err:  # it took the request and may be generating: never sent twice
        connection.close()
        breaker.trip(url)
        raise unavailable(  # its own code: a request that may be generating is never resent
            f"The generation service at {url} did not answer in "
            f"{settings.ATTUNE_SERVING_TIMEOUT:g} s.",
            code="serving_timeout",
        ) from err
    except (OSError, http.client.HTTPException) as err:  # reset or closed before any answer
        connection.close()
        raise _NotTaken(str(err) or type(err).__name__) from err
    if response.status == 200:
        breaker.reset(url)
        return EventStream(connection, response, url)
    try:
        data = json.loads(response.read() or b"{}")
    except (OSError, http.client.HTTPException, ValueError):
        data = {}
    connection.close()
    if not isinstance(data, dict):
        data = {}
    if response.status == 503:  # loading or unavailable: it has not started this generation
        refused = GenerationError.from_dict(data, 503)
        if refused.code == "database_unavailable":  # shared by every replica: no failover
            raise refused
        loading = refused.message if refused.code == "model_loading" else ""
        raise _NotTaken(f"503: {refused.message}", loading)
    breaker.reset(url)
    if response.status == 401:  # the serving key, not the caller's: a deployment problem
        raise GenerationError(
            f"The web process and the serving process at {url} do not share ATTUNE_SERVING_KEY.",
            status=503,
            type="service_unavailable_error",
            code="serving_misconfigured",
        )
    raise GenerationError.from_dict(data, response.status)


# --- health


@dataclass(frozen=True)
class ReplicaStatus:
    """One serving replica as its ``/healthz`` shows it: ``ok``; ``loading`` (it answers but is
    not ready); ``down`` (not reachable, or a broken answer: ``error`` says which)."""

    url: str
    state: ReplicaState
    health: dict[str, Any] | None = None
    error: str = ""


def _probe(url: str) -> ReplicaStatus:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port or 80, timeout=HEALTH_TIMEOUT_S
    )
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException) as err:
        return ReplicaStatus(url, "down", error=str(err) or type(err).__name__)
    finally:
        connection.close()
    try:
        health = json.loads(raw)
    except ValueError:
        health = None
    if not isinstance(health, dict):
        health = None
    if response.status == 200 and health is not None and health.get("status") == "ok":
        return ReplicaStatus(url, "ok", health)
    if response.status in (200, 503):
        return ReplicaStatus(url, "loading", health)
    return ReplicaStatus(url, "down", health, f"/healthz answered {response.status}")


def statuses() -> list[ReplicaStatus]:
    """Every replica's state, in ``ATTUNE_SERVING_URLS`` order (probed at once)."""
    urls = replica_urls()
    if len(urls) == 1:
        return [_probe(urls[0])]
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        return list(pool.map(_probe, urls))


def status() -> dict[str, Any] | None:
    """The ``/healthz`` answer of the first replica that is up, or None when none is."""
    return next((r.health for r in statuses() if r.state == "ok"), None)
