"""The remote backend against a loopback OpenAI-compatible server that speaks vLLM's LoRA API:
the composed adapter is written when the user's adapter or η change and loaded with
``/v1/load_lora_adapter``; the request then names it as its model."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from apps.adapters.models import AdapterVersion, PreferenceCoefficient, PreferenceVector
from apps.feedback.models import Interaction
from core import config
from core.errors import GenerationError
from core.serving import GenerateRequest, GenerationParams
from tests.apps.generation.conftest import save_adapter
from tests.support.factories import PersonaFactory
from workers.adapters.storage import AdapterStore
from workers.serving.lora import load_lora, read_lora
from workers.serving.remote import RemoteBackend, RemoteService
from workers.serving.server import JSONHandler
from workers.serving.weights import WeightsProvider

MESSAGES = [{"role": "user", "content": "The council met on Monday."}]


class FakeVLLM(JSONHandler):
    calls: list[tuple[str, dict]]
    loaded: set[str]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append((self.path, body))
        if self.path == "/v1/load_lora_adapter":
            assert (Path(body["lora_path"]) / "adapter_config.json").is_file()
            self.loaded.add(body["lora_name"])
            self._json(200, {})
        elif self.path == "/v1/unload_lora_adapter":
            self.loaded.discard(body["lora_name"])
            self._json(200, {})
        elif body["model"] not in self.loaded | {"attune/style-lm"}:
            self._json(404, {"error": {"message": "model not found", "type": "NotFoundError",
                                       "param": "model", "code": 404}})  # fmt: skip
        elif len(body["messages"][-1]["content"]) > 1000:
            error = {"message": "maximum context length is 64 tokens", "type": "BadRequestError"}
            self._json(400, {"error": {**error, "param": None, "code": 400}})
        else:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ["Hello", " world"]:
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            usage = {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}}
            for chunk in (final, usage):
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def fake_vllm() -> Iterator[tuple[str, type[FakeVLLM]]]:
    handler = type("Handler", (FakeVLLM,), {"calls": [], "loaded": set()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def personalized_user(user, style_var: Path, tmp_path: Path):
    root = tmp_path / "adapters"
    path, fingerprint = save_adapter(style_var, root, "user", seed=1)
    AdapterVersion.objects.create(
        user=user, version=1, status="active", method="dpo", base_model="attune/style-lm",
        base_fingerprint=fingerprint, rank=4, storage_path=path,
    )  # fmt: skip
    positive, _ = save_adapter(style_var, root, "pos", seed=2)
    negative, _ = save_adapter(style_var, root, "neg", seed=3)
    PreferenceVector.objects.create(
        name="format-bullets-vs-prose", attribute="format", positive="bullets", negative="prose",
        base_model="attune/style-lm", base_fingerprint=fingerprint, rank=4,
        positive_path=positive, negative_path=negative,
    )  # fmt: skip
    PreferenceCoefficient.objects.create(user=user, vector_name="format-bullets-vs-prose", eta=0.5)
    PersonaFactory(user=user, text="I teach primary school.")
    return (
        user,
        AdapterStore(config.artifact_store(), root),
        fingerprint,
        {"user": path, "pos": positive, "neg": negative},
    )


def service_for(url: str, store: AdapterStore) -> RemoteService:
    weights = WeightsProvider(store, None, "attune/style-lm", 64 * 1024 * 1024)
    return RemoteService(RemoteBackend(url, "attune/style-lm"), weights, store)


def generate(service: RemoteService, user, **params) -> list[dict]:
    request = GenerateRequest(
        user.pk, tuple(MESSAGES), GenerationParams(temperature=0.0, **params), stream=True
    )
    events: list[dict] = []
    service.run(service.prepare(request), events.append)
    return events


@pytest.mark.django_db
def test_composed_adapter_is_written_loaded_and_named(fake_vllm, personalized_user):
    url, handler = fake_vllm
    user, store, fingerprint, paths = personalized_user
    service = service_for(url, store)
    events = generate(service, user)
    assert [e["text"] for e in events if e["type"] == "delta"] == ["Hello", " world"]
    done = events[-1]
    assert done["type"] == "done" and done["choices"][0]["text"] == "Hello world"
    assert done["usage"] == {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    (load_path, load), (chat_path, chat) = handler.calls
    assert load_path == "/v1/load_lora_adapter" and chat_path == "/v1/chat/completions"
    assert chat["model"] == load["lora_name"] and chat["stream"] is True
    assert "I teach primary school." in chat["messages"][0]["content"]

    # the written adapter is exactly user LoRA + 0.5 · (θ₊ − θ₋)
    written = read_lora(Path(load["lora_path"]))
    parts = {k: load_lora(store, v, fingerprint) for k, v in paths.items()}
    for name, (a, b) in written.modules.items():
        expected = sum(
            w * (parts[k].modules[name][1] @ parts[k].modules[name][0])
            for k, w in (("user", 1.0), ("pos", 0.5), ("neg", -0.5))
        )
        assert torch.allclose(b @ a, expected, atol=1e-5)

    interaction = Interaction.objects.get(pk=done["choices"][0]["interaction_id"])
    assert interaction.output == "Hello world"
    assert interaction.adapter_version == f"user-{user.pk}-v1"
    assert interaction.preference_coefficients == {"format-bullets-vs-prose": 0.5}

    generate(service, user)  # unchanged weights: no new load
    assert [p for p, _ in handler.calls].count("/v1/load_lora_adapter") == 1
    PreferenceCoefficient.objects.filter(user=user).update(eta=-1.0)
    generate(service, user)  # η changed: a new adapter is written and loaded, the old unloaded
    paths_called = [p for p, _ in handler.calls]
    assert paths_called.count("/v1/load_lora_adapter") == 2
    assert "/v1/unload_lora_adapter" in paths_called
    assert handler.loaded == {handler.calls[-1][1]["model"]}


@pytest.mark.django_db
def test_remote_refusals_keep_their_status(fake_vllm, personalized_user):
    url, _ = fake_vllm
    user, store, *_ = personalized_user
    service = service_for(url, store)
    request = GenerateRequest(user.pk, ({"role": "user", "content": "x" * 2000},))
    with pytest.raises(GenerationError) as err:
        service.prepare(request)
    assert err.value.status == 400 and "context length" in err.value.message
    down = service_for("http://127.0.0.1:1/v1", store)
    with pytest.raises(GenerationError) as err:
        down.prepare(replace(request, messages=tuple(MESSAGES)))
    assert err.value.status == 503
