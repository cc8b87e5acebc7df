"""Generation waits do not starve the rest of the API: at most
``ATTUNE_GENERATION_USER_CONCURRENCY`` generations of one user at once across web processes
(429 beyond) and ``ATTUNE_GENERATION_PROCESS_CONCURRENCY`` in one web process (429
``server_busy`` beyond),
each with ``Retry-After`` in OpenAI's shape; a stream holds its slot until it is closed; and a
real gunicorn process keeps answering ``/api/me`` while its generations wait."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.accounts.services import issue_personal_token
from apps.generation import client
from apps.web.generation import GenerationFailed
from apps.web.generation import generate as generate_for_the_ui
from tests.apps.common.servers import gunicorn
from tests.support.factories import UserFactory
from tests.support.serving import StandIn, StandInHandler, stand_ins

KEY = "test-serving-key"
CHAT = {"model": "attune", "messages": [{"role": "user", "content": "Hi."}], "max_tokens": 4}


class HeldHandler(StandInHandler):
    """The stand-in's answer, given only once the test lets generations finish."""

    server: StandIn

    def do_POST(self) -> None:
        self.server.arrived.release()  # type: ignore[attr-defined]
        self.server.finish.wait(30)  # type: ignore[attr-defined]
        super().do_POST()


@pytest.fixture
def serving(settings) -> Iterator[StandIn]:
    """A stand-in serving process; generations answer at once until ``hold()``."""
    with stand_ins(1, KEY) as (stand_in,):
        stand_in.arrived = threading.Semaphore(0)  # type: ignore[attr-defined]
        stand_in.finish = threading.Event()  # type: ignore[attr-defined]
        settings.ATTUNE_SERVING_URLS = [stand_in.url]
        settings.ATTUNE_SERVING_KEY = KEY
        settings.ATTUNE_GENERATION_RETRY_AFTER = 3
        client.breaker.clear()
        try:
            yield stand_in
        finally:
            stand_in.finish.set()  # type: ignore[attr-defined]


def hold(stand_in: StandIn) -> None:
    stand_in.RequestHandlerClass = HeldHandler


def wait_for_arrivals(stand_in: StandIn, count: int) -> None:
    for _ in range(count):
        assert stand_in.arrived.acquire(timeout=20), "a generation never reached serving"  # type: ignore[attr-defined]


def api_client(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_personal_token(user, 't').key}")
    return api


def in_thread(api: APIClient, answers: list) -> threading.Thread:
    def ask() -> None:
        try:
            answers.append(api.post("/v1/chat/completions", CHAT, format="json"))
        finally:
            connection.close()  # this thread's session (it held the advisory lock)

    thread = threading.Thread(target=ask)
    thread.start()
    return thread


def assert_refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Retry-After"] == "3"
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert error["type"] == ("requests" if code == "rate_limit_exceeded" else "rate_limit_error")


@pytest.mark.django_db(transaction=True)
def test_a_user_has_at_most_n_generations_in_flight(serving, settings):
    settings.ATTUNE_GENERATION_USER_CONCURRENCY = 2
    settings.ATTUNE_GENERATION_PROCESS_CONCURRENCY = 8
    hold(serving)
    alice, bob = UserFactory(), UserFactory()
    alice_api, bob_api = api_client(alice), api_client(bob)
    answers: list = []
    threads = [in_thread(alice_api, answers) for _ in range(2)]
    wait_for_arrivals(serving, 2)

    assert_refused(alice_api.post("/v1/chat/completions", CHAT, format="json"),
                   429, "rate_limit_exceeded")  # fmt: skip
    assert alice_api.get("/api/me").status_code == 200  # her other requests go on
    threads.append(in_thread(bob_api, answers))  # another user is not held back by hers
    wait_for_arrivals(serving, 1)

    serving.finish.set()  # type: ignore[attr-defined]
    for thread in threads:
        thread.join(timeout=30)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert alice_api.post("/v1/chat/completions", CHAT, format="json").status_code == 200


@pytest.mark.django_db
def test_a_stream_holds_its_slot_until_it_is_closed(serving, settings, user):
    settings.ATTUNE_GENERATION_USER_CONCURRENCY = 1
    api = api_client(user)
    first = api.post("/v1/chat/completions", {**CHAT, "stream": True}, format="json")
    assert first.status_code == 200  # headers sent, the body not read yet

    assert_refused(api.post("/v1/chat/completions", CHAT, format="json"),
                   429, "rate_limit_exceeded")  # fmt: skip
    with pytest.raises(GenerationFailed, match="at most 1"):  # the web UI says it on the form
        generate_for_the_ui(user, [{"role": "user", "content": "Hi."}])

    assert b"[DONE]" in b"".join(first.streaming_content)  # read to the end: closed
    assert api.post("/v1/chat/completions", CHAT, format="json").status_code == 200


@pytest.mark.django_db
def test_a_web_process_takes_at_most_n_generations(serving, settings):
    settings.ATTUNE_GENERATION_PROCESS_CONCURRENCY = 1
    alice, bob = api_client(UserFactory()), api_client(UserFactory())
    first = alice.post("/v1/chat/completions", {**CHAT, "stream": True}, format="json")
    assert first.status_code == 200

    assert_refused(bob.post("/v1/chat/completions", CHAT, format="json"),
                   429, "server_busy")  # fmt: skip
    assert bob.get("/api/me").status_code == 200

    b"".join(first.streaming_content)
    assert bob.post("/v1/chat/completions", CHAT, format="json").status_code == 200


# --- a real web process


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def http(method: str, url: str, key: str = "", body: dict | None = None, timeout: float = 30):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, dict(err.headers), err.read())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("cap", [2, 0], ids=["capped", "uncapped-control"])
def test_api_me_keeps_answering_while_generations_wait(serving, cap: int):
    """Three threads, generations held at the serving process: with the cap (2) the third
    thread stays free and ``/api/me`` answers at once; without it (the control) all three wait
    on generations and ``/api/me`` does not answer."""
    hold(serving)
    keys = [issue_personal_token(UserFactory(), "t").key for _ in range(4)]
    env = {
        "ATTUNE_SERVING_URLS": serving.url,
        "ATTUNE_SERVING_KEY": KEY,
        "ATTUNE_GENERATION_PROCESS_CONCURRENCY": str(cap),
        "ATTUNE_GENERATION_USER_CONCURRENCY": "8",
        "ATTUNE_GENERATION_RETRY_AFTER": "3",
    }
    with gunicorn(threads=3, **env) as url:
        answers: dict[int, Answer] = {}

        def generate(i: int) -> None:
            answers[i] = http("POST", f"{url}/v1/chat/completions", keys[i], CHAT)

        threads = [threading.Thread(target=generate, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        wait_for_arrivals(serving, min(cap or 3, 3))
        try:
            if cap:
                for _ in range(5):
                    started = time.monotonic()
                    assert http("GET", f"{url}/api/me", keys[3], timeout=5).status == 200
                    assert time.monotonic() - started < 1.0
                deadline = time.monotonic() + 10  # the third, refused at once by its thread
                while not answers and time.monotonic() < deadline:
                    time.sleep(0.05)
                refused = [a for a in answers.values() if a.status == 429]
                assert len(refused) == 1 and refused[0].headers["Retry-After"] == "3"
                assert json.loads(refused[0].body)["error"]["code"] == "server_busy"
            else:
                with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
                    http("GET", f"{url}/api/me", keys[3], timeout=1.5)
        finally:
            serving.finish.set()  # type: ignore[attr-defined]
            for thread in threads:
                thread.join(timeout=30)
        assert sorted(a.status for a in answers.values()) == (
            [200, 200, 429] if cap else [200, 200, 200]
        )
