"""``/v1/chat/completions`` with ``ATTUNE_INFERENCE_BACKEND=llm`` and that backend failing: a
real serving process, a real HTTP server that answers 500, hangs, or is gone (connection
refused). Every generation answers 200; the nearest memory entry is used as it is and the
``attune`` block says why; a failed backend rests (not asked again at once); once it answers,
the memory is aggregated again."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from apps.feedback.models import Interaction
from apps.memory.models import MemoryEntry
from tests.apps.generation.conftest import KEY
from tests.support.serving import serving_process

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = [{"role": "user", "content": "The council met on Monday and approved the tram line."}]
REST_S = 3.0  # ATTUNE_LLM_BREAKER_SECONDS of the serving process


class LLMStub:
    """A chat-completions server on a fixed port: ``mode`` is ok, 500 or hang; ``stop()`` closes
    the port (connections are refused), ``start()`` opens it again."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests = 0
        self.port = 0
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                stub.requests += 1
                if stub.mode == "500":
                    self.send_response(500)
                    self.end_headers()
                    return
                if stub.mode == "hang":
                    time.sleep(10)
                    return
                content = "Bullet points, brief, formal."
                body = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture(scope="module")
def llm() -> Iterator[LLMStub]:
    stub = LLMStub()
    stub.start()
    yield stub
    stub.stop()


@pytest.fixture(scope="module")
def serving_with_llm(django_db_setup, django_db_blocker, style_var, llm: LLMStub):
    """A serving process whose CIPHER backend is ``llm`` (short aggregation timeout and rest)."""
    from django.conf import settings

    with django_db_blocker.unblock(), serving_process(
        style_var, KEY, settings.SECRET_KEY, ATTUNE_SERVING_DEFAULT_MAX_TOKENS="8",
        ATTUNE_INFERENCE_BACKEND="llm", ATTUNE_LLM_BASE_URL=f"http://127.0.0.1:{llm.port}/v1",
        ATTUNE_LLM_MODEL="test-instruct", ATTUNE_LLM_AGGREGATE_TIMEOUT_SECONDS="0.5",
        ATTUNE_LLM_BREAKER_SECONDS=str(REST_S),
    ) as (url, adapter_root):  # fmt: skip
        yield url, adapter_root


@pytest.fixture
def generation_with_llm(serving_with_llm, settings):
    url, adapter_root = serving_with_llm
    settings.ATTUNE_SERVING_URL = url
    settings.ATTUNE_SERVING_KEY = KEY
    settings.ATTUNE_ADAPTER_ROOT = adapter_root


def chat(client, **body) -> tuple[int, dict, float]:
    started = time.monotonic()
    answer = client.post(
        "/v1/chat/completions",
        {"model": "attune", "messages": MESSAGES, "max_tokens": 4, "temperature": 0, **body},
        format="json",
    )
    elapsed = time.monotonic() - started
    if body.get("stream"):
        text = b"".join(answer.streaming_content).decode()
        chunks = [json.loads(line[6:]) for line in text.split("\n\n") if line[6:7] == "{"]
        final = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])
        return answer.status_code, final, elapsed
    return answer.status_code, answer.json(), elapsed


def test_a_failing_llm_backend_never_fails_generation(
    client_for, user, llm: LLMStub, generation_with_llm
):
    entries = {
        MemoryEntry.objects.create(
            user=user, context_text=text, preference=preference, origin="inferred",
            embedding=[0.05 * (i + 1)] * 383 + [float(i)],
        ).pk: preference
        for i, (text, preference) in enumerate(
            [("The council met.", "bullet points, brief"), ("A paper.", "formal, detailed")]
        )
    }  # fmt: skip
    client = client_for(user)

    llm.mode = "500"
    status, body, _ = chat(client)
    assert status == 200, body
    attune = body["attune"]
    assert attune["memory_degraded"]["reason"] == "http_error"
    assert attune["memory_degraded"]["fallback"] == "nearest_entry"
    (used,) = attune["memory_entry_ids"]  # one entry, as it is
    assert attune["conditioning_preference"] == entries[used]
    recorded = Interaction.objects.get(pk=attune["interaction_ids"][0])
    assert recorded.memory_entry_ids == [used] and recorded.conditioning_preference == entries[used]
    assert llm.requests == 1

    llm.mode = "ok"  # the backend rests after its failure: not asked, even when streaming
    status, final, _ = chat(client, stream=True)
    assert status == 200 and final["attune"]["memory_degraded"]["reason"] == "skipped"
    assert llm.requests == 1

    time.sleep(REST_S + 0.2)
    llm.mode = "hang"
    status, body, elapsed = chat(client)
    assert status == 200 and body["attune"]["memory_degraded"]["reason"] == "timeout"
    assert elapsed < 8  # the 0.5 s aggregation timeout, not the 30 s inference one

    time.sleep(REST_S + 0.2)
    llm.stop()  # connection refused
    status, body, _ = chat(client)
    assert status == 200 and body["attune"]["memory_degraded"]["reason"] == "unreachable"

    time.sleep(REST_S + 0.2)
    llm.mode = "ok"
    llm.start()  # back on the same port
    status, body, _ = chat(client)
    assert status == 200 and body["attune"]["memory_degraded"] is None
    assert body["attune"]["conditioning_preference"] == "Bullet points, brief, formal"
    assert sorted(body["attune"]["memory_entry_ids"]) == sorted(entries)
