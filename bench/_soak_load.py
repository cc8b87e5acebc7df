"""The soak benchmark's load: people reading, giving feedback and asking for generations over
HTTP, each request recorded (when, what, status, JSON or not, latency); writes the API
acknowledged are kept so they can be checked against the database afterwards."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

READS = ("/api/me", "/api/interactions?limit=20", "/api/edits?limit=20", "/api/memory?limit=20")


class Client:
    """HTTP to one base URL, a ``requests`` session per thread (sessions are not thread-safe)."""

    def __init__(self, base_url: str, timeout: float = 60) -> None:
        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self._local = threading.local()

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        if (session := getattr(self._local, "session", None)) is None:
            session = self._local.session = requests.Session()
        return session.request(method, self.base_url + path, timeout=self.timeout, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)


@dataclass(frozen=True)
class Caller:
    """Who a request is made as: a personal token, or an app key naming one of its end users."""

    key: str
    end_user: str = ""

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"}
        if self.end_user:
            headers["X-Attune-User"] = self.end_user
        return headers


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the load started
    kind: str  # read | write | generate | saturate | probe
    path: str
    status: int  # 0: no answer (connection refused, reset, timeout)
    is_json: bool
    seconds: float
    retry_after: bool


@dataclass
class Recorder:
    """Every request of the run, and the writes the API acknowledged (model, id)."""

    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    acknowledged: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.started

    def request(
        self, client: Client, kind: str, method: str, path: str, caller: Caller, **kw: object
    ) -> requests.Response | None:
        at, began = self.now(), time.perf_counter()
        try:
            response = client.request(method, path, headers=caller.headers(), **kw)
        except requests.RequestException:
            response = None
        seconds = time.perf_counter() - began
        content_type = response.headers.get("content-type", "") if response is not None else ""
        sample = Sample(
            at=at,
            kind=kind,
            path=path.split("?")[0],
            status=response.status_code if response is not None else 0,
            is_json="json" in content_type,
            seconds=seconds,
            retry_after=response is not None and "retry-after" in response.headers,
        )
        with self.lock:
            self.samples.append(sample)
        return response

    def acknowledge(self, model: str, pk: int) -> None:
        with self.lock:
            self.acknowledged.append((model, pk))


def reader(client: Client, rec: Recorder, callers: list[Caller], stop: threading.Event) -> None:
    for path, caller in zip(itertools.cycle(READS), itertools.cycle(callers), strict=False):
        if stop.is_set():
            return
        rec.request(client, "read", "GET", path, caller)
        time.sleep(0.05)


def writer(
    client: Client, rec: Recorder, callers: list[Caller], stop: threading.Event, seed: int
) -> None:
    """An interaction, then a rating of it and (half the time) an edit: three acknowledged rows."""
    rng = random.Random(seed)
    for n in itertools.count():
        if stop.is_set():
            return
        caller = callers[n % len(callers)]
        words = " ".join(
            rng.choice(("tram", "council", "spring", "budget", "line")) for _ in range(8)
        )
        body = {"prompt": f"Summarize: {words}.", "output": f"The {words}.", "source": "news"}
        created = rec.request(client, "write", "POST", "/api/interactions", caller, json=body)
        if created is None or created.status_code != 201:
            time.sleep(0.2)
            continue
        interaction = created.json()["id"]
        rec.acknowledge("interaction", interaction)
        rating = {"interaction": interaction, "thumbs": rng.choice(("up", "down"))}
        answer = rec.request(client, "write", "POST", "/api/ratings", caller, json=rating)
        if answer is not None and answer.status_code in (200, 201):
            rec.acknowledge("rating", answer.json()["id"])
        if rng.random() < 0.5:
            edit = {"interaction": interaction, "edited": f"- {words}"}
            answer = rec.request(client, "write", "POST", "/api/edits", caller, json=edit)
            if answer is not None and answer.status_code == 201:
                rec.acknowledge("edit", answer.json()["id"])
        time.sleep(0.1)


def generator(
    client: Client,
    rec: Recorder,
    callers: list[Caller],
    stop: threading.Event,
    kind: str = "generate",
    n: int = 1,
    max_tokens: int = 48,
) -> None:
    for caller in itertools.cycle(callers):
        if stop.is_set():
            return
        body = {
            "model": "attune",
            "messages": [{"role": "user", "content": "Summarize: the council approved a tram."}],
            "max_tokens": max_tokens,
            "n": n,
        }
        answer = rec.request(client, kind, "POST", "/v1/chat/completions", caller, json=body)
        if answer is not None and answer.status_code == 429:
            time.sleep(float(answer.headers.get("retry-after", "1")))


def start_threads(targets: list[Callable[[], None]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    return threads
