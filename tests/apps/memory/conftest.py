"""Fixtures for CIPHER memory: a real OpenAI-compatible HTTP server on 127.0.0.1, eager Celery."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class ChatServer:
    """A loopback chat-completions server answering from a script, recording each request.

    Each script step is ``("answer", text)``, ``("status", code)``, ``("sleep", seconds)`` (then
    the default answer) or ``("raw", bytes)`` (a 200 with that body, JSON or not); when the
    script runs out, every request gets the default answer.
    """

    url: str
    script: list[tuple[str, Any]] = field(default_factory=list)
    default_answer: str = "Bullet points, brief."
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    state = ChatServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            kind, value = state.script.pop(0) if state.script else ("answer", None)
            if kind == "status":
                self.send_response(value)
                self.end_headers()
                return
            if kind == "sleep":
                time.sleep(value)
            text = value if kind == "answer" and value is not None else state.default_answer
            payload = (
                value
                if kind == "raw"
                else json.dumps(
                    {
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": text}}
                        ],
                        "usage": {"prompt_tokens": 120, "completion_tokens": 6},
                    }
                ).encode()
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def rested_backends() -> Iterator[None]:
    """Each test starts and ends with no backend resting after a failure (the breaker is per
    process)."""
    from apps.memory.llm import breaker

    breaker.clear()
    yield
    breaker.clear()


@pytest.fixture
def llm_settings(settings, chat_server):
    """Settings that send inference to the loopback server; no rest after a failure (tests of
    the breaker set ``ATTUNE_LLM_BREAKER_SECONDS``), so retries reach the server."""
    settings.ATTUNE_INFERENCE_BACKEND = "llm"
    settings.ATTUNE_LLM_BASE_URL = chat_server.url
    settings.ATTUNE_LLM_MODEL = "test-instruct"
    settings.ATTUNE_LLM_API_KEY = "sk-test"
    settings.ATTUNE_LLM_TIMEOUT_SECONDS = 0.5
    settings.ATTUNE_LLM_AGGREGATE_TIMEOUT_SECONDS = 0.5
    settings.ATTUNE_LLM_BREAKER_SECONDS = 0
    return settings
