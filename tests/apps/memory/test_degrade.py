"""An unreachable, failing, slow or garbled LLM backend never fails the memory's conditioning:
the nearest entry is used as it is and the reason is reported; a failed backend rests (breaker).
Against a real loopback HTTP server (``chat_server``), or a port nobody listens on."""

from __future__ import annotations

import time

import pytest

from apps.memory.inference import InferenceError
from apps.memory.llm import Breaker, LLMBackend
from apps.memory.models import MemoryEntry
from apps.memory.selectors import degraded_notice, preference_for
from tests.support.processes import free_port

QUERY = [1.0] + [0.0] * 383
NEAR = [0.9, 0.1] + [0.0] * 382  # nearest to QUERY
FAR = [0.5, 0.5] + [0.0] * 382


@pytest.fixture
def memory(user) -> tuple[MemoryEntry, MemoryEntry]:
    """Two learned entries with different phrases (so they need an aggregation call)."""
    near = MemoryEntry.objects.create(
        user=user, preference="bullet points, brief", origin=MemoryEntry.Origin.INFERRED,
        context_text="The council met.", embedding=NEAR,
    )  # fmt: skip
    far = MemoryEntry.objects.create(
        user=user, preference="formal, detailed", origin=MemoryEntry.Origin.INFERRED,
        context_text="A paper abstract.", embedding=FAR,
    )  # fmt: skip
    return near, far


@pytest.mark.django_db
def test_a_working_backend_aggregates_every_entry(user, memory, llm_settings, chat_server):
    chat_server.script = [("answer", "Bullet points, brief, formal.")]
    conditioning = preference_for(user, QUERY)
    assert conditioning.preference == "Bullet points, brief, formal"
    assert conditioning.memory_ids == (memory[0].pk, memory[1].pk) and not conditioning.degraded
    assert degraded_notice(conditioning.degraded) is None and len(chat_server.requests) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (("status", 500), "http_error"),
        (("status", 401), "http_error"),
        (("sleep", 3.0), "timeout"),  # the aggregation timeout is 0.5 s
        (("raw", b"<html>Bad gateway</html>"), "invalid_answer"),
        (("raw", b'{"choices": []}'), "invalid_answer"),
        (("answer", "   "), "invalid_answer"),
    ],
)
def test_a_failing_backend_falls_back_to_the_nearest_entry(
    user, memory, llm_settings, chat_server, step, reason
):
    chat_server.script = [step]
    started = time.monotonic()
    conditioning = preference_for(user, QUERY)
    assert time.monotonic() - started < 2.0  # bounded by the short aggregation timeout
    near, _ = memory
    assert (conditioning.preference, conditioning.memory_ids) == (near.preference, (near.pk,))
    assert conditioning.degraded == reason
    notice = degraded_notice(conditioning.degraded)
    assert notice["reason"] == reason and notice["fallback"] == "nearest_entry"
    assert "127.0.0.1" not in notice["message"]  # the backend's address stays inside


@pytest.mark.django_db
def test_an_unreachable_or_unconfigured_backend_falls_back(user, memory, llm_settings):
    llm_settings.ATTUNE_LLM_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"  # nobody listens
    conditioning = preference_for(user, QUERY)
    assert conditioning.degraded == "unreachable"
    assert conditioning.preference == memory[0].preference
    llm_settings.ATTUNE_LLM_BASE_URL = ""
    assert preference_for(user, QUERY).degraded == "not_configured"


@pytest.mark.django_db
def test_the_users_own_phrase_is_the_fallback_where_it_is_in_charge(
    user, memory, llm_settings, chat_server
):
    own = MemoryEntry.objects.create(
        user=user, preference="prose please", origin=MemoryEntry.Origin.USER,
        context_text="The council met again.", embedding=FAR,
    )  # fmt: skip
    chat_server.script = [("status", 503)]
    conditioning = preference_for(user, QUERY)
    assert conditioning.memory_ids == (own.pk,) and conditioning.preference == "prose please"


@pytest.mark.django_db
def test_one_phrase_needs_no_backend_and_is_not_degraded(user, llm_settings):
    MemoryEntry.objects.create(
        user=user, preference="brief", origin=MemoryEntry.Origin.INFERRED,
        context_text="x", embedding=NEAR,
    )  # fmt: skip
    llm_settings.ATTUNE_LLM_BASE_URL = ""  # not even configured
    conditioning = preference_for(user, QUERY)
    assert conditioning.preference == "brief" and not conditioning.degraded


@pytest.mark.django_db
def test_a_failed_backend_rests_then_one_probe_goes_through(
    user, memory, llm_settings, chat_server
):
    llm_settings.ATTUNE_LLM_BREAKER_SECONDS = 0.6
    chat_server.script = [("status", 500)]
    assert preference_for(user, QUERY).degraded == "http_error"
    for _ in range(3):  # resting: no request reaches the server, the answer is at once
        started = time.monotonic()
        assert preference_for(user, QUERY).degraded == "skipped"
        assert time.monotonic() - started < 0.2
    assert len(chat_server.requests) == 1
    time.sleep(0.7)
    recovered = preference_for(user, QUERY)  # the probe: the backend answers again
    assert not recovered.degraded and recovered.preference == "Bullet points, brief"
    assert not preference_for(user, QUERY).degraded and len(chat_server.requests) == 3


def test_the_breaker_lets_one_probe_through_at_a_time():
    breaker = Breaker()
    assert breaker.allow("u")
    breaker.failed("u", 0.05)
    assert not breaker.allow("u") and breaker.resting("u")
    time.sleep(0.06)
    assert breaker.allow("u")  # the probe
    assert not breaker.allow("u") and breaker.resting("u")  # the others wait for it
    breaker.failed("u", 0.05)
    time.sleep(0.06)
    assert breaker.allow("u")
    breaker.succeeded("u")
    assert breaker.allow("u") and breaker.allow("u") and not breaker.resting("u")
    breaker.failed("u", 0)  # no rest configured: never refused
    assert breaker.allow("u")


def test_inference_errors_carry_a_reason(chat_server):
    backend = LLMBackend(chat_server.url, "m", timeout=0.3, rest_seconds=30)
    chat_server.script = [("status", 502)]
    with pytest.raises(InferenceError) as failed:
        backend.infer([("a b", "a c")])
    assert failed.value.reason == "http_error" and not backend.available()
    with pytest.raises(InferenceError) as skipped:
        backend.infer([("a b", "a c")])
    assert skipped.value.reason == "skipped" and len(chat_server.requests) == 1
