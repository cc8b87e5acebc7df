"""Fair use: request-rate throttles, the failed-key count per address, and concurrency slots.

Throttles are DRF's (a sliding window of request times per key in the shared cache: the
database's cache table, or Redis with ``ATTUNE_CACHE_URL``; every web process and machine sees
the same counts). Their rates are the ``ATTUNE_THROTTLE_*`` settings, read per request, so a
deployment changes them in settings alone. A throttled request answers 429 with ``Retry-After``
(under ``/v1`` in OpenAI's shape: :func:`rate_limited`).

Concurrency slots bound how many long waits (generations) run at once, per user across every
web process (PostgreSQL advisory locks: held by the database session, so a killed process
frees its slots at once) and per web process (a counter), so the threads a web process has stay
free for the rest of the API.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.http import HttpRequest
from rest_framework import throttling
from rest_framework.request import Request

from core.errors import GenerationError

log = logging.getLogger(__name__)


def client_address(request: HttpRequest | Request) -> str:
    """The caller's address: ``REMOTE_ADDR``, or with ``ATTUNE_TRUSTED_PROXIES`` proxies in
    front, the address the outermost of them saw (from ``X-Forwarded-For``). The one rule for
    throttles, failed keys and the login lockout (``AXES_CLIENT_IP_CALLABLE``)."""
    return throttling.BaseThrottle().get_ident(request) or ""


class SettingRateThrottle(throttling.SimpleRateThrottle):
    """A DRF throttle whose rate is the setting named by ``setting`` (empty: no limit), and
    whose ``wait()`` is always a time (DRF's is None once a window holds more requests than the
    rate, which concurrent requests can cause: then no ``Retry-After`` would be sent)."""

    setting = ""

    def get_rate(self) -> str | None:
        return getattr(settings, self.setting, "") or None

    def wait(self) -> float | None:
        if self.num_requests is None:
            return None
        history = getattr(self, "history", [])
        if len(history) < self.num_requests:
            return 1.0
        # the request that must leave the window before one more fits in it
        return max(1.0, history[self.num_requests - 1] + self.duration - self.now)

    def key_for(self, ident: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AnonThrottle(SettingRateThrottle):
    """Requests without a login, per address (most of the API refuses them first)."""

    scope, setting = "anon", "ATTUNE_THROTTLE_ANON"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.key_for(client_address(request))


class UserThrottle(SettingRateThrottle):
    """Requests of one user: a person, or one end user of a client app."""

    scope, setting = "user", "ATTUNE_THROTTLE_USER"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return self.key_for(request.user.pk)


class AppThrottle(SettingRateThrottle):
    """Requests of one client app, all its end users together."""

    scope, setting = "app", "ATTUNE_THROTTLE_APP"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        app = getattr(request.auth, "app", None)
        return None if app is None else self.key_for(app.pk)


class GenerationUserThrottle(UserThrottle):
    scope, setting = "generation_user", "ATTUNE_THROTTLE_GENERATION_USER"


class GenerationAppThrottle(AppThrottle):
    scope, setting = "generation_app", "ATTUNE_THROTTLE_GENERATION_APP"


GENERATION_THROTTLES = [GenerationUserThrottle, GenerationAppThrottle]


class AuthFailureThrottle(SettingRateThrottle):
    """Failed bearer keys per address. Only failures count, and a valid key is never refused:
    someone guessing keys is slowed down without locking out a key's owner (who may share the
    address, behind one NAT)."""

    scope, setting = "auth_failures", "ATTUNE_THROTTLE_AUTH_FAILURES"

    def record(self, request: HttpRequest | Request) -> float | None:
        """Count one failure of ``request``'s address; seconds to wait when it has now failed
        more often than the rate allows, else None."""
        if self.num_requests is None:
            return None
        self.key = self.key_for(client_address(request))
        self.now = self.timer()
        history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]
        self.history = [self.now, *history][: self.num_requests + 1]  # newest first, bounded
        self.cache.set(self.key, self.history, self.duration)
        if len(self.history) <= self.num_requests:
            return None
        # until a wrong key would be answered 401 again (the window has room for one more)
        return max(1.0, self.history[self.num_requests - 1] + self.duration - self.now)


# --- concurrency slots


class Busy(GenerationError):
    """A request refused for fair use, to be retried after ``retry_after`` seconds (sent as
    ``Retry-After``); in OpenAI's shape under ``/v1``."""

    def __init__(self, message: str, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(1, math.ceil(retry_after))


def rate_limited(message: str, retry_after: float) -> Busy:
    """A 429 as OpenAI sends one for a requests limit (``type`` "requests", ``code``
    "rate_limit_exceeded"); the ``openai`` client retries it after ``Retry-After``."""
    return Busy(message, retry_after, status=429, type="requests", code="rate_limit_exceeded")


def server_busy(message: str, retry_after: float) -> Busy:
    """A 429 for load shed on purpose (``code`` "server_busy", ``type`` "rate_limit_error", as
    OpenAI types a 429 that is not the caller's quota). Not a 5xx: nothing failed, and
    monitoring keeps 5xx for real failures; clients retry it as any 429."""
    return Busy(message, retry_after, status=429, type="rate_limit_error", code="server_busy")


class _ProcessCounts:
    """Slots in use in this process, per scope, and the advisory-lock keys this process holds
    (a database session may take the same advisory lock twice, so two requests sharing one
    session must not take the same slot)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_use: dict[str, int] = {}
        self._keys: set[int] = set()

    def take(self, scope: str, limit: int) -> bool:
        with self._lock:
            if limit > 0 and self._in_use.get(scope, 0) >= limit:
                return False
            self._in_use[scope] = self._in_use.get(scope, 0) + 1
            return True

    def give_back(self, scope: str) -> None:
        with self._lock:
            self._in_use[scope] = max(0, self._in_use.get(scope, 0) - 1)

    def in_use(self, scope: str) -> int:
        with self._lock:
            return self._in_use.get(scope, 0)

    def claim_key(self, key: int) -> bool:
        with self._lock:
            if key in self._keys:
                return False
            self._keys.add(key)
            return True

    def drop_key(self, key: int) -> None:
        with self._lock:
            self._keys.discard(key)


process_counts = _ProcessCounts()


def _lock_key(scope: str, user_id: int, slot: int) -> int:
    digest = hashlib.blake2b(f"attune:{scope}:{user_id}:{slot}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Slots:
    """Slots held for one request (see :func:`take_slots`); ``release()`` gives them back, once,
    however often it is called."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self._process = False
        self._key: int | None = None
        self._connection: Any = None
        self._released = False

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._key is not None:
            self._unlock()
        if self._process:
            process_counts.give_back(self.scope)

    def _unlock(self) -> None:
        key, self._key = self._key, None
        try:
            if self._connection.connection is not None:  # else its session, and lock, are gone
                with self._connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        except DatabaseError:
            log.warning("could not release a %s slot; its session ends it", self.scope)
        finally:
            process_counts.drop_key(key)  # type: ignore[arg-type]

    def _try_user_slot(self, user_id: int, limit: int) -> bool:
        connection = connections[DEFAULT_DB_ALIAS]  # this thread's session
        with connection.cursor() as cursor:
            for slot in range(limit):
                key = _lock_key(self.scope, user_id, slot)
                if not process_counts.claim_key(key):
                    continue
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
                if cursor.fetchone()[0]:
                    self._key, self._connection = key, connection
                    return True
                process_counts.drop_key(key)
        return False


def take_slots(
    scope: str, user_id: int, *, user_limit: int, process_limit: int, retry_after: float
) -> Slots:
    """One of ``process_limit`` slots of this process and one of ``user_limit`` slots of the
    user across every process (0: no limit), held until ``release()``. Raises :class:`Busy`:
    429 ``server_busy`` when this process is full (another process or a retry may
    take it), 429 ``rate_limit_exceeded`` when the user has ``user_limit`` running."""
    slots = Slots(scope)
    if not process_counts.take(scope, process_limit):
        raise server_busy(
            f"This server is running as many {scope} requests as it takes at once "
            f"({process_limit}); please retry shortly.",
            retry_after,
        )
    slots._process = True
    try:
        if user_limit > 0 and not slots._try_user_slot(user_id, user_limit):
            raise rate_limited(
                f"Too many {scope} requests at once for this user: at most {user_limit} run "
                f"at a time. Retry once one has finished.",
                retry_after,
            )
    except BaseException:
        slots.release()
        raise
    return slots
