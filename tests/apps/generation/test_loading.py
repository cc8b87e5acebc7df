"""While the serving process prepares its model: ``/healthz`` says ``loading`` with progress, a
generation answers 503 saying the model is being prepared (not "not reachable"), the web's
``/healthz`` and Ask page say how far it is; once loaded it answers. The model here is a test
double whose load waits on an event (a real serving process loads the same way, in a thread)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.test import Client, override_settings

from apps.generation import client
from core.errors import GenerationError
from core.serving import GenerateRequest, GenerationParams
from tests.support.factories import UserFactory
from workers.serving import __main__ as serving_main
from workers.serving.loading import Preparing, file_progress
from workers.serving.server import ServingHTTPServer

KEY = "test-serving-key"


class Ready:
    """The loaded service's face as the health check reads it."""

    backend = "local"
    base_model = "attune/style-lm"


@pytest.fixture
def preparing_server(
    tmp_path: Path, settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SimpleNamespace]:
    progress = tmp_path / "style-lm.progress.json"
    progress.write_text(json.dumps({"stage": "building the built-in style model",
                                    "step": 420, "steps": 1100}))  # fmt: skip
    release = threading.Event()

    def slow_build(settings: object) -> Ready:
        release.wait(30)
        return Ready()

    monkeypatch.setattr(serving_main, "build_local", slow_build)
    stand_in = Preparing("local", "attune/style-lm", file_progress(progress, "loading"))
    server = ServingHTTPServer(("127.0.0.1", 0), stand_in, KEY)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.ATTUNE_SERVING_URLS = [url]
    settings.ATTUNE_SERVING_KEY = KEY
    client.breaker.clear()
    loader = serving_main.load_in_background(
        server, SimpleNamespace(ATTUNE_SERVING_BACKEND="local")
    )
    yield SimpleNamespace(url=url, release=release, loader=loader, server=server)
    release.set()
    server.shutdown()
    server.server_close()


def _health(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.django_db
def test_loading_is_reported_with_progress_until_the_model_is_ready(preparing_server) -> None:
    status, health = _health(preparing_server.url)
    assert status == 503 and health["status"] == "loading"
    assert health["loading"]["fraction"] == pytest.approx(420 / 1100, abs=1e-3)

    user = UserFactory()
    request = GenerateRequest(user.pk, ({"role": "user", "content": "Hi."},), GenerationParams())
    with pytest.raises(GenerationError) as refused:
        client.open_stream(request)
    assert refused.value.status == 503 and refused.value.code == "model_loading"
    assert "being prepared" in refused.value.message and "38%" in refused.value.message
    assert "not reachable" not in refused.value.message

    with override_settings(ATTUNE_HEALTH_TOKEN="t"):  # details: staff or the health token
        web = Client().get("/healthz", HTTP_AUTHORIZATION="Bearer t").json()["serving"]
    assert web["replicas"][0]["state"] == "loading"
    assert web["replicas"][0]["loading"]["step"] == 420

    preparing_server.release.set()
    preparing_server.loader.join(10)
    status, health = _health(preparing_server.url)
    assert status == 200 and health["status"] == "ok"


@pytest.mark.django_db
def test_the_ask_page_says_the_model_is_being_prepared(preparing_server) -> None:
    person = UserFactory()
    person.save()
    browser = Client()
    browser.force_login(person)
    answer = browser.get("/ask")
    assert answer.status_code == 200
    page = answer.content.decode()
    assert 'id="generation-loading"' in page and "38%" in page
    assert 'id="generation-down"' not in page


@pytest.mark.django_db
def test_a_model_that_fails_to_load_says_why(tmp_path: Path, monkeypatch) -> None:
    def broken(settings: object) -> None:
        raise OSError("no such model: nowhere/model")

    monkeypatch.setattr(serving_main, "build_local", broken)
    server = ServingHTTPServer(("127.0.0.1", 0), Preparing("local", "m", lambda: {}), KEY)
    serving_main.load_in_background(server, SimpleNamespace(ATTUNE_SERVING_BACKEND="local")).join(5)
    health = server.health()
    assert health["status"] == "error" and "no such model" in health["error"]
    with pytest.raises(GenerationError, match="could not load its model"):
        server.service.prepare(None)
    server.server_close()
