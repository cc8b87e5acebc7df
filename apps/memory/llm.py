"""The LLM inference backend: the CIPHER prompts sent to an OpenAI-compatible chat endpoint.

Any server that speaks ``POST {base_url}/chat/completions`` works: OpenAI, vLLM, llama.cpp's
server, Ollama … (a local model is served by one of those on 127.0.0.1). Standard library only
(``urllib``), so the web side may import it; inference runs in the Celery worker, aggregation in
the serving process at generation (with its own short timeout, so a dead backend delays an
answer by seconds at most). Every failure (unreachable server, timeout, an HTTP error, an answer
without text) raises :class:`apps.memory.inference.InferenceError` with a one-word reason, and
rests the backend for ``ATTUNE_LLM_BREAKER_SECONDS`` (:class:`Breaker`): meanwhile calls fail at
once instead of waiting on it again.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from apps.memory.inference import (
    Candidate,
    EditPair,
    InferenceError,
    Inferred,
    Usage,
    aggregation_prompt,
    as_is,
    clip,
    count_tokens,
    inference_prompt,
    usage_of,
)

SYSTEM_PROMPT = "You describe writing-style preferences in short phrases."
_LEAD_IN = re.compile(r"^(?:the user(?:'s)? (?:prefers?|preference is)|preference)\s*:?\s*", re.I)


def clean_phrase(answer: str, limit: int) -> str:
    """A model's answer as one preference phrase: one line, no quotes, bullets or lead-in."""
    lines = [line.strip().lstrip("-*• ").strip() for line in answer.strip().splitlines()]
    text = ", ".join(line for line in lines if line)
    text = _LEAD_IN.sub("", text.strip().strip("\"'`").strip())
    return clip(" ".join(text.split()).rstrip("."), limit)


class Breaker:
    """Backends that failed lately, rested for a while (per process, thread-safe).

    While a backend rests, :meth:`allow` says no and the caller fails at once instead of waiting
    on it (generation falls back, inference is retried later). When the time is up one call goes
    through as a probe while the others still fail fast: its success closes the breaker, its
    failure rests the backend again.
    """

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._probing: set[str] = set()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Whether a call to ``key`` may go out now (the probe, when its rest is over)."""
        with self._lock:
            until = self._until.get(key)
            if until is None:
                return True
            if time.monotonic() < until or key in self._probing:
                return False
            self._probing.add(key)
            return True

    def failed(self, key: str, seconds: float) -> None:
        with self._lock:
            self._probing.discard(key)
            if seconds > 0:
                self._until[key] = time.monotonic() + seconds

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._probing.discard(key)
            self._until.pop(key, None)

    def resting(self, key: str) -> bool:
        """Whether calls to ``key`` would be refused now (without taking the probe)."""
        with self._lock:
            until = self._until.get(key)
            return until is not None and (time.monotonic() < until or key in self._probing)

    def clear(self) -> None:
        with self._lock:
            self._until.clear()
            self._probing.clear()


breaker = Breaker()


class LLMBackend:
    """CIPHER's inference and aggregation with an instruct model over HTTP.

    ``timeout`` bounds an inference (a worker can wait), ``aggregate_timeout`` an aggregation (a
    generation waits on it); each is the limit for connecting and for each read. After a failure
    the endpoint rests for ``rest_seconds`` (0: never), see :class:`Breaker`.
    """

    name = "llm"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout: float = 30.0,
        max_tokens: int = 64,
        max_chars: int = 500,
        aggregate_timeout: float | None = None,
        rest_seconds: float = 0.0,
    ) -> None:
        if not base_url or not model:
            raise InferenceError(
                "set ATTUNE_LLM_BASE_URL and ATTUNE_LLM_MODEL for the llm backend", "not_configured"
            )
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.max_chars = max_chars
        self.aggregate_timeout = timeout if aggregate_timeout is None else aggregate_timeout
        self.rest_seconds = rest_seconds

    @classmethod
    def from_settings(cls) -> LLMBackend:
        from django.conf import settings

        return cls(
            settings.ATTUNE_LLM_BASE_URL,
            settings.ATTUNE_LLM_MODEL,
            settings.ATTUNE_LLM_API_KEY,
            settings.ATTUNE_LLM_TIMEOUT_SECONDS,
            settings.ATTUNE_LLM_MAX_TOKENS,
            settings.ATTUNE_MAX_PREFERENCE_CHARS,
            settings.ATTUNE_LLM_AGGREGATE_TIMEOUT_SECONDS,
            settings.ATTUNE_LLM_BREAKER_SECONDS,
        )

    def available(self) -> bool:
        """False while the endpoint rests after a failure (nothing would be sent)."""
        return not breaker.resting(self.url)

    def infer(self, pairs: Sequence[EditPair]) -> Inferred:
        return self.complete(inference_prompt(pairs))

    def aggregate(self, candidates: Sequence[Candidate]) -> Inferred:
        if (single := as_is(candidates)) is not None:  # CIPHER-1, or copies of one phrase
            return single
        return self.complete(aggregation_prompt(candidates), self.aggregate_timeout)

    def complete(self, prompt: str, timeout: float | None = None) -> Inferred:
        """Send one prompt, unless the endpoint rests; the answer as a clean phrase, with the
        usage the server reports. Any failure rests the endpoint."""
        if not breaker.allow(self.url):
            raise InferenceError(
                f"{self.url} failed lately; not asked again for up to {self.rest_seconds:g} s",
                "skipped",
            )
        try:
            inferred = self._complete(prompt, self.timeout if timeout is None else timeout)
        except BaseException:  # whatever went wrong, the probe slot is given back
            breaker.failed(self.url, self.rest_seconds)
            raise
        breaker.succeeded(self.url)
        return inferred

    def _complete(self, prompt: str, timeout: float) -> Inferred:
        body = self._post(
            {
                "model": self.model,
                "messages": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": prompt},
                ],
                "temperature": 0,
                "max_tokens": self.max_tokens,
            },
            timeout,
        )
        try:
            answer = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as err:
            raise InferenceError(
                f"{self.url} answered without a message: {body!r:.200}", "invalid_answer"
            ) from err
        if not isinstance(answer, str | None):
            raise InferenceError(f"{self.url} answered with a non-text message", "invalid_answer")
        phrase = clean_phrase(answer or "", self.max_chars)
        if not phrase:
            raise InferenceError(f"{self.url} answered with an empty preference", "invalid_answer")
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        try:
            counted = Usage(
                1,
                int(usage.get("prompt_tokens") or count_tokens(SYSTEM_PROMPT + prompt)),
                int(usage.get("completion_tokens") or count_tokens(answer)),
            )
        except (TypeError, ValueError):  # a server's odd usage figures: count them ourselves
            counted = usage_of(SYSTEM_PROMPT + prompt, answer)
        return Inferred(phrase, counted)

    def _post(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(payload).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            raise InferenceError(f"{self.url} answered HTTP {err.code}", "http_error") from err
        except TimeoutError as err:
            raise InferenceError(f"{self.url} timed out after {timeout:g} s", "timeout") from err
        except urllib.error.URLError as err:
            if isinstance(err.reason, TimeoutError):
                raise InferenceError(
                    f"{self.url} timed out after {timeout:g} s", "timeout"
                ) from err
            raise InferenceError(f"{self.url} is unreachable: {err.reason}", "unreachable") from err
        except (OSError, http.client.HTTPException) as err:  # reset, closed without an answer …
            message = f"{self.url} dropped the connection: {err!r}"
            raise InferenceError(message, "unreachable") from err
        except (ValueError, UnicodeDecodeError) as err:
            message = f"{self.url} answered with invalid JSON"
            raise InferenceError(message, "invalid_answer") from err
        if not isinstance(body, dict):
            raise InferenceError(
                f"{self.url} answered with JSON that is not an object", "invalid_answer"
            )
        return body
