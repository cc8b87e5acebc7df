"""The serving process's answer when a generation fails after its answer started: the database
going away while the interaction is stored is a 503 ``database_unavailable`` (as before it
started), anything else a 500; the web side raises either as the caller's error."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import OperationalError

from apps.generation import client
from apps.generation.services import CompletionStream
from core.errors import GenerationError
from core.serving import GenerateRequest, GenerationParams
from workers.serving.server import ServingHTTPServer

KEY = "test-serving-key"
REQUEST = GenerateRequest(
    1, ({"role": "user", "content": "The council met."},), GenerationParams(max_tokens=4)
)


class FailingService:
    """Starts the answer, then fails the way ``finish`` does when it stores the interaction."""

    backend = "local"
    base_model = "attune/style-lm"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def prepare(self, request: GenerateRequest) -> object:
        return type("Prepared", (), {"id": "gen-1"})()

    def run(self, prepared: object, write: Callable[[dict[str, Any]], None]) -> None:
        write({"type": "start", "id": "gen-1", "created": 0, "model": "attune", "n": 1})
        raise self.error


@pytest.fixture
def serve(settings) -> Iterator[Callable[[Exception], None]]:
    servers: list[ServingHTTPServer] = []

    def start(error: Exception) -> None:
        server = ServingHTTPServer(("127.0.0.1", 0), FailingService(error), KEY)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()  # fmt: skip
        servers.append(server)
        settings.ATTUNE_SERVING_URLS = [f"http://127.0.0.1:{server.server_address[1]}"]
        settings.ATTUNE_SERVING_KEY = KEY
        client.breaker.clear()

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _generate() -> GenerationError:
    with pytest.raises(GenerationError) as err:
        list(CompletionStream(client.open_stream(REQUEST)))
    return err.value


@pytest.mark.django_db
def test_the_database_going_away_mid_answer_is_a_503(serve) -> None:
    serve(OperationalError("server closed the connection unexpectedly"))
    error = _generate()
    assert (error.status, error.code, error.type) == (
        503, "database_unavailable", "service_unavailable_error"
    )  # fmt: skip


@pytest.mark.django_db
def test_any_other_failure_mid_answer_is_a_500(serve) -> None:
    serve(RuntimeError("boom"))
    error = _generate()
    assert (error.status, error.type) == (500, "server_error")
    assert "RuntimeError" in error.message
