"""Serving replicas (``ATTUNE_SERVING_URLS``): each user sticks to one replica (rendezvous
hashing), fails over to the next while it is down, a failed replica is skipped for a while, and
nothing is retried once an answer has started. Routing is tested against loopback stand-ins that
speak the serving protocol; failover against two real serving processes, one SIGKILLed."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from apps.generation import client
from apps.generation.services import Completion, CompletionStream
from apps.health.models import QueueActivity, WorkerHeartbeat
from core.errors import GenerationError
from core.serving import GenerateRequest, GenerationParams
from tests.support.factories import UserFactory
from tests.support.serving import StandIn, serving_processes, stand_ins

KEY = "test-serving-key"
MESSAGES = ({"role": "user", "content": "The council met on Monday."},)
PARAMS = GenerationParams(max_tokens=4, temperature=0.0)


def ask(user_id: int) -> str:
    """One finished generation for the user; returns the URL of the replica that answered."""
    events = client.open_stream(GenerateRequest(user_id, MESSAGES, PARAMS))
    assert any(isinstance(event, Completion) for event in CompletionStream(events))
    return events.url


def home(user_id: int, urls: list[str]) -> str:
    return client.rendezvous_order(user_id, urls)[0]


def users_at(url: str, urls: list[str], count: int, start: int = 1) -> list[int]:
    return [u for u in range(start, start + 1000) if home(u, urls) == url][:count]


@pytest.fixture(autouse=True)
def fresh_breaker() -> Iterator[None]:
    client.breaker.clear()
    yield
    client.breaker.clear()


# --- rendezvous hashing


def test_rendezvous_is_stable_when_replicas_come_and_go():
    urls = [f"http://10.0.0.{i}:8300" for i in range(1, 4)]
    users = range(1, 3001)
    first = {u: home(u, urls) for u in users}
    assert all(sorted(client.rendezvous_order(u, urls)) == sorted(urls) for u in range(1, 50))
    spread = Counter(first.values())
    assert set(spread) == set(urls) and min(spread.values()) > 800, spread  # about a third each

    added = [*urls, "http://10.0.0.4:8300"]
    moved = [u for u in users if home(u, added) != first[u]]
    assert moved and all(home(u, added) == added[-1] for u in moved)  # only to the new one
    assert 500 < len(moved) < 1000  # about a quarter

    removed = urls[1:]
    moved = [u for u in users if home(u, removed) != first[u]]
    assert moved == [u for u in users if first[u] == urls[0]]  # only the removed one's users
    assert all(home(u, removed) == client.rendezvous_order(u, urls)[1] for u in moved)


# --- routing, against stand-ins


@dataclass
class Replicas:
    a: StandIn
    b: StandIn

    @property
    def urls(self) -> list[str]:
        return [self.a.url, self.b.url]


@pytest.fixture
def replicas(settings) -> Iterator[Replicas]:
    with stand_ins(2, KEY) as (a, b):
        settings.ATTUNE_SERVING_URLS = [a.url, b.url]
        settings.ATTUNE_SERVING_KEY = KEY
        settings.ATTUNE_SERVING_SKIP_SECONDS = 5.0
        yield Replicas(a, b)


def test_a_user_always_lands_on_the_same_replica_and_users_spread(replicas):
    served = {u: {ask(u) for _ in range(3)} for u in range(1, 21)}
    assert all(urls == {home(u, replicas.urls)} for u, urls in served.items()), served
    assert set(replicas.a.users).isdisjoint(replicas.b.users)
    assert replicas.a.users and replicas.b.users  # both replicas have users


def test_one_url_keeps_working(replicas, settings):
    settings.ATTUNE_SERVING_URLS = []
    settings.ATTUNE_SERVING_URL = replicas.b.url
    assert {ask(u) for u in range(1, 11)} == {replicas.b.url}


def test_a_replica_that_is_down_moves_its_users_and_is_skipped(replicas, settings):
    a, b = replicas.a, replicas.b
    on_a = users_at(a.url, replicas.urls, 5)
    a.mode = "loading"  # 503 before answering
    assert ask(on_a[0]) == b.url
    assert a.users == [on_a[0]]  # tried first, once
    assert [ask(u) for u in on_a] == [b.url] * 5
    assert a.users == [on_a[0]]  # skipped while it rests: straight to b
    assert client.breaker.resting(a.url)

    settings.ATTUNE_SERVING_SKIP_SECONDS = 0.2
    client.breaker.trip(a.url)
    a.mode = "ok"
    time.sleep(0.3)
    assert [ask(u) for u in on_a] == [a.url] * 5  # back home once it is up again

    a.stop()  # now refused
    started = time.monotonic()
    assert [ask(u) for u in on_a] == [b.url] * 5
    assert time.monotonic() - started < 1.0


def test_a_connect_timeout_fails_over(replicas, settings):
    settings.ATTUNE_SERVING_CONNECT_TIMEOUT = 0.3
    with socket.socket() as hole, socket.socket() as filler:
        hole.bind(("127.0.0.1", 0))
        hole.listen(0)  # one connection fills its queue: the next SYNs go unanswered
        filler.connect(hole.getsockname())
        black = f"http://127.0.0.1:{hole.getsockname()[1]}"
        settings.ATTUNE_SERVING_URLS = [black, replicas.b.url]
        user = users_at(black, settings.ATTUNE_SERVING_URLS, 1)[0]
        started = time.monotonic()
        assert ask(user) == replicas.b.url
        assert 0.25 < time.monotonic() - started < 2.0
        started = time.monotonic()
        assert ask(user) == replicas.b.url  # skipped now: no second wait
        assert time.monotonic() - started < 0.25


def test_nothing_is_retried_once_the_answer_started(replicas):
    a, b = replicas.a, replicas.b
    user = users_at(a.url, replicas.urls, 1)[0]
    a.mode = "cut"  # 200 and a start event, then the connection is reset
    events = client.open_stream(GenerateRequest(user, MESSAGES, PARAMS))
    with pytest.raises(GenerationError) as err:
        list(events)
    assert err.value.status == 503 and "mid-answer" in err.value.message
    assert a.users == [user] and b.users == []  # not generated twice


def test_a_refusal_is_the_replicas_answer_not_a_failover(replicas):
    a, b = replicas.a, replicas.b
    user = users_at(a.url, replicas.urls, 1)[0]
    a.mode = "refuse"
    with pytest.raises(GenerationError) as err:
        ask(user)
    assert (err.value.status, err.value.code) == (400, "context_length_exceeded")
    assert b.users == [] and not client.breaker.resting(a.url)


@pytest.mark.parametrize("how", ["loading", "stopped"])
def test_503_only_when_no_replica_answers(replicas, how):
    for replica in (replicas.a, replicas.b):
        if how == "loading":
            replica.mode = "loading"
        else:
            replica.stop()
    with pytest.raises(GenerationError) as err:
        ask(1)
    assert (err.value.status, err.value.code) == (503, "serving_unavailable")
    message = err.value.message
    assert replicas.a.url in message and replicas.b.url in message and "./attune run" in message
    with pytest.raises(GenerationError):  # the resting replicas are still tried, last
        ask(2)
    if how == "loading":
        assert len(replicas.a.users) == len(replicas.b.users) == 2


def test_a_database_outage_is_the_answer_not_a_failover(replicas, settings):
    """Every replica shares the database: its 503 goes to the caller as it is, at once."""
    a, b = replicas.a, replicas.b
    user = users_at(a.url, replicas.urls, 1)[0]
    a.mode = "database"
    settings.ATTUNE_SERVING_WAIT_SECONDS = 10
    began = time.monotonic()
    with pytest.raises(GenerationError) as err:
        ask(user)
    assert (err.value.status, err.value.code) == (503, "database_unavailable")
    assert b.users == [] and time.monotonic() - began < 2


def test_a_request_waits_for_a_replica_that_comes_back(replicas, settings):
    """A serving process restarting (here: loading, then ready after a second) is waited for
    up to ATTUNE_SERVING_WAIT_SECONDS instead of failing the request at once."""
    for replica in (replicas.a, replicas.b):
        replica.mode = "loading"
    settings.ATTUNE_SERVING_WAIT_SECONDS = 0
    with pytest.raises(GenerationError) as err:
        ask(1)
    assert err.value.status == 503

    settings.ATTUNE_SERVING_WAIT_SECONDS = 10
    ready = threading.Timer(1.0, lambda: setattr(replicas.b, "mode", "ok"))
    ready.start()
    began = time.monotonic()
    assert ask(1) == replicas.b.url
    assert 0.9 < time.monotonic() - began < 5


def test_statuses_show_every_replica(replicas, settings):
    with stand_ins(1, KEY) as (gone,):
        gone.stop()
        settings.ATTUNE_SERVING_URLS = [replicas.a.url, replicas.b.url, gone.url]
        replicas.a.mode = "loading"
        found = client.statuses()
        assert [(r.url, r.state) for r in found] == [
            (replicas.a.url, "loading"), (replicas.b.url, "ok"), (gone.url, "down"),
        ]  # fmt: skip
        assert found[1].health == {"status": "ok"} and found[2].error
        assert client.status() == {"status": "ok"}  # the first replica that is up
        replicas.b.mode = "loading"
        assert client.status() is None


# --- two real serving processes


@pytest.fixture
def two_serving(django_db_setup, django_db_blocker, style_var: Path, settings, tmp_path: Path):
    with django_db_blocker.unblock(), serving_processes(
        2, style_var, KEY, settings.SECRET_KEY, logs=[tmp_path / "a.log", tmp_path / "b.log"],
        ATTUNE_SERVING_MAX_WAIT_MS="5", ATTUNE_SERVING_DEFAULT_MAX_TOKENS="8",
    ) as started:  # fmt: skip
        settings.ATTUNE_SERVING_URLS = [s.url for s in started]
        settings.ATTUNE_SERVING_KEY = KEY
        settings.ATTUNE_ADAPTER_ROOT = started[0].adapter_root
        yield started


@pytest.mark.django_db(transaction=True)
def test_two_serving_processes_keep_users_home_and_fail_over_when_one_is_killed(two_serving):
    a, b = two_serving
    urls = [a.url, b.url]
    users = [UserFactory().pk for _ in range(12)]
    while {home(u, urls) for u in users} != set(urls):  # both replicas have users
        users.append(UserFactory().pk)

    # each user always on their own replica; the replicas' own counters agree
    served = Counter()
    for user in users:
        for _ in range(2):
            url = ask(user)
            assert url == home(user, urls)
            served[url] += 1
    rows = {r.url: r.health["batching"]["rows"] for r in client.statuses()}
    assert rows == {a.url: served[a.url], b.url: served[b.url]}

    # steady traffic for every user; then a is SIGKILLed
    outcomes: list[tuple[float, float, int, str]] = []  # (start, end, user, replica or error)
    stop = threading.Event()

    def traffic(mine: list[int]) -> None:
        while not stop.is_set():
            for user in mine:
                started = time.monotonic()
                try:
                    result = ask(user)
                except GenerationError as err:
                    result = f"error: {err.message}"
                outcomes.append((started, time.monotonic(), user, result))

    threads = [threading.Thread(target=traffic, args=(users[i::3],)) for i in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        on_a = [u for u in users if home(u, urls) == a.url]
        killed_at = time.monotonic()
        a.kill()
        dead_at = time.monotonic()
        while True:  # a user of a until their first answer, from b
            try:
                assert ask(on_a[0]) == b.url
                break
            except GenerationError:
                assert time.monotonic() - killed_at < 5.0
        failover_s = time.monotonic() - killed_at
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until every user was asked again after the kill
            if {user for started, _, user, _ in list(outcomes) if started > dead_at} == set(users):
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    before = [(user, result) for _, ended, user, result in outcomes if ended < killed_at]
    assert before and all(result == home(user, urls) for user, result in before)
    after = [(user, result) for started, _, user, result in outcomes if started > dead_at]
    assert len({user for user, _ in after}) == len(users), "every user asked after the kill"
    assert all(result == b.url for _, result in after), [r for _, r in after if r != b.url]
    errors = [o for o in outcomes if o[3].startswith("error")]
    assert all(started < dead_at for started, *_ in errors), errors  # only those in flight
    print(
        f"failover: a user of the killed replica answered {failover_s * 1000:.0f} ms after "
        f"SIGKILL; {len(errors)} request(s) in flight failed, {len(after)} after it all answered"
    )
    assert failover_s < 5.0

    # /healthz lists both replicas, the killed one down: degraded, still 200 while b is up
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        hostname="w@host", queues=["default", "gpu"], pid=1, started_at=now, last_seen_at=now
    )
    for queue in ("default", "gpu"):  # a task just finished on each: proof enough, no ping
        QueueActivity.objects.create(queue=queue, finished_at=now)
    with override_settings(ATTUNE_HEALTH_TOKEN="t"):  # details: staff or the health token
        answer = Client().get("/healthz", HTTP_AUTHORIZATION="Bearer t")
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "degraded", body
    replicas = body["serving"]["replicas"]
    assert [(r["url"], r["state"]) for r in replicas] == [(a.url, "down"), (b.url, "ok")]
    assert body["serving"]["ok"] is True and replicas[1]["base_model"]
