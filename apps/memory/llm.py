"""The LLM inference backend: the CIPHER prompts sent to an OpenAI-compatible chat endpoint.

Any server that speaks ``POST {base_url}/chat/completions`` works: OpenAI, vLLM, llama.cpp's
server, Ollama … (a local model is served by one of those on 127.0.0.1). Standard library only
(``urllib``), so the web side may import it; calls happen in the Celery worker. Every failure
(unreachable server, timeout, an HTTP error, an answer without text) raises
:class:`apps.memory.inference.InferenceError`, which the task retries with back-off.
"""

from __future__ import annotations

import json
import re
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
)

SYSTEM_PROMPT = "You describe writing-style preferences in short phrases."
_LEAD_IN = re.compile(r"^(?:the user(?:'s)? (?:prefers?|preference is)|preference)\s*:?\s*", re.I)


def clean_phrase(answer: str, limit: int) -> str:
    """A model's answer as one preference phrase: one line, no quotes, bullets or lead-in."""
    lines = [line.strip().lstrip("-*• ").strip() for line in answer.strip().splitlines()]
    text = ", ".join(line for line in lines if line)
    text = _LEAD_IN.sub("", text.strip().strip("\"'`").strip())
    return clip(" ".join(text.split()).rstrip("."), limit)


class LLMBackend:
    """CIPHER's inference and aggregation with an instruct model over HTTP."""

    name = "llm"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout: float = 30.0,
        max_tokens: int = 64,
        max_chars: int = 500,
    ) -> None:
        if not base_url or not model:
            raise InferenceError("set ATTUNE_LLM_BASE_URL and ATTUNE_LLM_MODEL for the llm backend")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.max_chars = max_chars

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
        )

    def infer(self, pairs: Sequence[EditPair]) -> Inferred:
        return self.complete(inference_prompt(pairs))

    def aggregate(self, candidates: Sequence[Candidate]) -> Inferred:
        if (single := as_is(candidates)) is not None:  # CIPHER-1, or copies of one phrase
            return single
        return self.complete(aggregation_prompt(candidates))

    def complete(self, prompt: str) -> Inferred:
        """Send one prompt; the answer as a clean phrase, with the usage the server reports."""
        body = self._post(
            {
                "model": self.model,
                "messages": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": prompt},
                ],
                "temperature": 0,
                "max_tokens": self.max_tokens,
            }
        )
        try:
            answer = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as err:
            raise InferenceError(f"{self.url} answered without a message: {body!r:.200}") from err
        phrase = clean_phrase(answer or "", self.max_chars)
        if not phrase:
            raise InferenceError(f"{self.url} answered with an empty preference")
        usage = body.get("usage") or {}
        return Inferred(
            phrase,
            Usage(
                1,
                int(usage.get("prompt_tokens") or count_tokens(SYSTEM_PROMPT + prompt)),
                int(usage.get("completion_tokens") or count_tokens(answer)),
            ),
        )

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(payload).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            raise InferenceError(f"{self.url} answered HTTP {err.code}") from err
        except TimeoutError as err:
            raise InferenceError(f"{self.url} timed out after {self.timeout:g} s") from err
        except urllib.error.URLError as err:
            raise InferenceError(f"{self.url} is unreachable: {err.reason}") from err
        except (ValueError, UnicodeDecodeError) as err:
            raise InferenceError(f"{self.url} answered with invalid JSON") from err
        if not isinstance(body, dict):
            raise InferenceError(f"{self.url} answered with JSON that is not an object")
        return body
