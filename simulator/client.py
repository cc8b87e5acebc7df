"""HTTP to a running Attune as one end user of a client app: generations through the official
``openai`` client, feedback through ``requests``.

A refusal that says when to come back (429 or 503 with ``Retry-After``) is waited out and retried,
as a polite client does, and counted. A connection dropped before any answer (typically a
keep-alive connection the server closed while the person waited: gunicorn keeps one 2 s, the
usual ``Retry-After``) is tried once more on a fresh one; a timeout is not (the server may still
be working on it). Anything else is an error the caller records. Every HTTP status seen (0: no
answer) is appended to the caller's list, so a round's record shows what it went through.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import openai
import requests

RETRYABLE = {429, 503}
MAX_WAIT_S = 60.0  # one Retry-After is never waited longer than this


class RequestFailed(Exception):
    """A request that got no usable answer: ``status`` is the HTTP status (0: none came)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status or 'no answer'}: {message}")
        self.status = status


@dataclass(frozen=True)
class Answer:
    """A generation: the texts and interaction ids of its choices, Attune's account of what
    personalized it, and how long the answering request took."""

    texts: list[str]
    interaction_ids: list[int]
    attune: dict[str, Any]
    latency_ms: float


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class AttuneClient:
    """One end user (``end_user``) of the client app whose key is ``key``, at ``url``; with
    ``end_user`` "" the requests name no end user, so a personal token acts as its own user.

    Not shared between threads: each simulated person has their own (the ``requests`` session
    and the ``openai`` client keep connections open for that person's rounds).
    """

    def __init__(
        self, url: str, key: str, end_user: str, *, timeout: float = 120.0, max_waits: int = 120
    ) -> None:
        self.url, self.end_user, self.max_waits = url.rstrip("/"), end_user, max_waits
        self.waits = 0  # 429/503 answers waited out
        self.reconnects = 0  # dropped connections tried again
        self.openai = openai.OpenAI(
            base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=timeout
        )
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"
        if end_user:
            self.session.headers["X-Attune-User"] = end_user
        self.timeout = timeout

    def close(self) -> None:
        self.openai.close()
        self.session.close()

    def _reconnect(self, dropped: int) -> bool:
        """Whether to try again after a connection dropped without an answer (once a call)."""
        if dropped > 1:
            return False
        self.reconnects += 1
        return True

    def _wait(self, status: int, retry_after: str | None, attempt: int) -> bool:
        """Whether to try again after this refusal (having slept as long as it asked)."""
        seconds = retry_after_seconds(retry_after)
        if status not in RETRYABLE or seconds is None or attempt >= self.max_waits:
            return False
        self.waits += 1
        time.sleep(min(seconds, MAX_WAIT_S))
        return True

    def chat(
        self,
        messages: list[dict[str, str]],
        statuses: list[int],
        *,
        n: int = 1,
        max_tokens: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        attune: Mapping[str, Any] | None = None,
    ) -> Answer:
        """``POST /v1/chat/completions`` as the end user (``user=``); ``attune`` options go in
        the body's ``attune`` object (e.g. ``{"layers": {"memory": False}}``)."""
        extra: dict[str, Any] = {"n": n}
        if self.end_user:
            extra["user"] = self.end_user
        for name, value in (("max_tokens", max_tokens), ("temperature", temperature)):
            if value is not None:
                extra[name] = value
        if seed is not None:
            extra["seed"] = seed
        if attune:
            extra["extra_body"] = {"attune": dict(attune)}
        attempt = dropped = 0
        while True:
            began = time.perf_counter()
            try:
                completion = self.openai.chat.completions.create(
                    model="attune", messages=messages, **extra
                )
            except openai.APIStatusError as err:
                statuses.append(err.status_code)
                if self._wait(err.status_code, err.response.headers.get("retry-after"), attempt):
                    attempt += 1
                    continue
                raise RequestFailed(err.status_code, err.message) from None
            except openai.APITimeoutError as err:
                statuses.append(0)
                raise RequestFailed(0, str(err)) from None
            except openai.APIConnectionError as err:
                statuses.append(0)
                dropped += 1
                if self._reconnect(dropped):
                    continue
                raise RequestFailed(0, f"{err} ({err.__cause__ or 'no cause'})") from None
            latency_ms = (time.perf_counter() - began) * 1000
            statuses.append(200)
            attune_info = dict((completion.model_extra or {}).get("attune") or {})
            choices = sorted(completion.choices, key=lambda c: c.index)
            ids = attune_info.get("interaction_ids") or [
                (c.model_extra or {}).get("interaction_id") for c in choices
            ]
            texts = [c.message.content or "" for c in choices]
            return Answer(texts, [int(i) for i in ids], attune_info, latency_ms)

    def post(self, path: str, body: Mapping[str, Any], statuses: list[int]) -> dict[str, Any]:
        """``POST /api/...`` as the end user; the JSON of a 200/201 answer (a write Attune
        acknowledged), else :class:`RequestFailed`."""
        return self.send("POST", path, body, statuses)

    def send(
        self, method: str, path: str, body: Mapping[str, Any], statuses: list[int]
    ) -> dict[str, Any]:
        """A JSON request to ``/api/...`` as the end user, retried as :meth:`post` says."""
        attempt = dropped = 0
        while True:
            try:
                answer = self.session.request(
                    method, self.url + path, json=dict(body), timeout=self.timeout
                )
            except requests.ConnectionError as err:
                statuses.append(0)
                dropped += 1
                if not isinstance(err, requests.Timeout) and self._reconnect(dropped):
                    continue
                raise RequestFailed(0, str(err)) from None
            except requests.RequestException as err:
                statuses.append(0)
                raise RequestFailed(0, str(err)) from None
            statuses.append(answer.status_code)
            if answer.status_code in (200, 201):
                return answer.json()
            if self._wait(answer.status_code, answer.headers.get("Retry-After"), attempt):
                attempt += 1
                continue
            raise RequestFailed(answer.status_code, answer.text[:300])
