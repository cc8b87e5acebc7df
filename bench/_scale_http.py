"""The scale benchmark's HTTP side: concurrent keep-alive timing of one request shape.

:func:`timed` sends one request shape ``n`` times from ``concurrency`` threads, each with its own
``requests`` session (keep-alive), after one unmeasured request per thread, and stops early after
``max_seconds``; a request's setup (creating the object a DELETE removes) runs outside the clock.
Streamed answers (exports) also give the time to the first body byte and MB/s over the body; they
are timed one download at a time (a person fetching their data), and their rate is judged only
where the body is at least :data:`RATE_MIN_BYTES` (a few kilobytes take a round trip, not a rate).

The request shapes: :mod:`bench._scale_api` (the OpenAPI schema), :mod:`bench._scale_pages`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from bench._support import percentile

Req = tuple[str, str, dict[str, Any]]  # method, path (with query), requests kwargs
Make = Callable[[int, "Caller"], Req]
OK = frozenset({200, 201, 202, 204, 302})
TARGET_MS = 200.0
RATE_MIN_BYTES = 1_000_000  # bodies smaller than this have no meaningful MB/s
CONCURRENCY = [4]  # threads per measured shape (``--concurrency``)


def export_target(mb_s: float) -> str:
    """The target of a streamed answer (an export) reaching ``mb_s``."""
    return f"first byte p99 < 200 ms; ≥ {mb_s:.0f} MB/s, one download, bodies ≥ 1 MB"


@dataclass
class Row:
    """One measured (or not measured) request shape."""

    area: str
    name: str
    user: str
    latencies: list[float] = field(default_factory=list)  # seconds
    statuses: Counter = field(default_factory=Counter)
    target: str = "p99 < 200 ms"
    note: str = ""
    ttfb: list[float] = field(default_factory=list)
    mbps: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # streamed bodies, bytes
    min_mb_s: float = 20.0  # the rate a streamed body of RATE_MIN_BYTES or more must reach
    extra: dict[str, Any] = field(default_factory=dict)
    expected: frozenset[int] = OK  # statuses that are right answers here

    def p(self, q: int) -> float:
        return percentile(self.latencies, q) * 1000

    @property
    def errors(self) -> int:
        return sum(c for s, c in self.statuses.items() if s not in self.expected)

    @property
    def rate_judged(self) -> bool:
        return bool(self.sizes) and min(self.sizes) >= RATE_MIN_BYTES

    def met(self) -> bool | None:
        if not self.latencies:
            return None
        if self.ttfb:
            fast_start = percentile(self.ttfb, 99) * 1000 < TARGET_MS
            return fast_start and (not self.rate_judged or min(self.mbps) >= self.min_mb_s)
        return self.p(99) < TARGET_MS and self.errors == 0


class Caller:
    """Who sends requests: bearer headers or session cookies (+ CSRF), a session per thread."""

    def __init__(
        self, base: str, label: str, headers: dict | None = None, cookies: dict | None = None
    ) -> None:
        self.base, self.label = base.rstrip("/"), label
        self.headers, self.cookies = dict(headers or {}), dict(cookies or {})
        if "csrftoken" in self.cookies:
            self.headers["X-CSRFToken"] = self.cookies["csrftoken"]
        self._local = threading.local()

    def session(self) -> requests.Session:
        if (found := getattr(self._local, "session", None)) is None:
            found = self._local.session = requests.Session()
            found.headers.update(self.headers)
            found.cookies.update(self.cookies)
        return found

    def send(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 300)
        return self.session().request(method, self.base + path, **kw)

    def json(self, method: str, path: str, **kw: Any) -> Any:
        answer = self.send(method, path, **kw)
        answer.raise_for_status()
        return answer.json()


def timed(
    row: Row,
    caller: Caller,
    make: Make,
    n: int,
    max_seconds: float,
    concurrency: int | None = None,
    stream: bool = False,
) -> Row:
    """Send ``make(i, caller)`` ``n`` times (fewer after ``max_seconds``) into ``row``, from
    ``concurrency`` threads (default: one for a streamed answer, else ``CONCURRENCY[0]``, which
    the benchmark's option sets)."""
    concurrency = concurrency or (1 if stream else CONCURRENCY[0])
    counter, lock = itertools.count(), threading.Lock()
    deadline = [0.0]
    failure: list[str] = []

    def one(i: int) -> tuple[float, int, float | None, float | None, int]:
        method, path, kw = make(i, caller)
        began = time.perf_counter()
        answer = caller.send(method, path, stream=stream, **kw)
        first, size = None, 0
        if stream:
            for chunk in answer.iter_content(256 * 1024):
                if first is None:
                    first = time.perf_counter() - began
                size += len(chunk)
        else:
            size = len(answer.content)
        took = time.perf_counter() - began
        rate = size / took / 1e6 if stream and took > 0 else None
        return took, answer.status_code, first, rate, size

    def run() -> None:
        try:
            one(-1)  # warm: this thread's connection, the server's caches
            # each thread measures at least one request, however slow: a shape slower than
            # --max-seconds is a figure, not an empty row
            first = True
            while (i := next(counter)) < n and (first or time.monotonic() < deadline[0]):
                first = False
                took, status, first, rate, size = one(i)
                with lock:
                    row.latencies.append(took)
                    row.statuses[status] += 1
                    if first is not None and rate is not None:
                        row.ttfb.append(first)
                        row.mbps.append(rate)
                        row.sizes.append(size)
        except (requests.RequestException, ValueError, KeyError, IndexError) as err:
            failure.append(f"{type(err).__name__}: {err}"[:160])

    deadline[0] = time.monotonic() + max_seconds
    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failure and not row.latencies:
        row.note = f"not measured: {failure[0]}"
    elif failure:
        row.note = f"{len(failure)} thread(s) stopped: {failure[0]}"
    return row


@dataclass
class Subject:
    """A measured user: label, id, caller (bearer), and some of their interaction ids."""

    label: str
    user_id: int
    caller: Caller
    interactions: list[int]


def list_path(path: str) -> str:
    return path.rsplit("/{", 1)[0]


def first_id(caller: Caller, path: str) -> int | str | None:
    """An id from the first page of the list at ``path`` (None when it is empty)."""
    body = caller.json("GET", path)
    items = body.get("results", body.get("data", [])) if isinstance(body, dict) else body
    return items[0]["id"] if items else None


def created(caller: Caller, path: str, body: dict | None = None) -> int:
    """Untimed setup: create through the API and return the new object's id."""
    answer = caller.send("POST", path, json=body)
    answer.raise_for_status()
    return answer.json()["id"]
