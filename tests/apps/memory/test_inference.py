"""Inference backends: offline (diff + style detectors) and LLM (a real loopback HTTP server)."""

from __future__ import annotations

import pytest

from apps.memory.inference import (
    Candidate,
    InferenceError,
    OfflineBackend,
    backend_from_settings,
    count_tokens,
    inference_prompt,
)
from apps.memory.llm import LLMBackend, clean_phrase
from core.world.preferences import phrase_to_style
from core.world.renderer import render
from core.world.sources import make_context

CONTEXT = make_context("news", 3)


def rendered(**style: str) -> str:
    return render(CONTEXT, "summarize", style)


def test_an_edit_from_prose_to_bullets_yields_a_phrase_about_bullets():
    inferred = OfflineBackend().infer([(rendered(format="prose"), rendered(format="bullets"))])
    assert "bullet" in inferred.preference
    assert phrase_to_style(inferred.preference) == {"format": "bullets"}
    prompt = inference_prompt([(rendered(format="prose"), rendered(format="bullets"))])
    assert inferred.usage.calls == 1 and inferred.usage.prompt_tokens == count_tokens(prompt)


def test_offline_inference_names_what_the_edit_moved_only():
    original = rendered(length="medium", tone="formal", emoji="yes")
    revised = rendered(length="short", tone="casual", emoji="yes")
    style = phrase_to_style(OfflineBackend().infer([(original, revised)]).preference)
    assert style == {"length": "short", "tone": "casual"}  # the emojis were there already
    assert OfflineBackend().infer([(original, original)]).preference == ""
    before = OfflineBackend(names_kept=True)  # the earlier reader: kept marked features too
    assert phrase_to_style(before.infer([(original, revised)]).preference)["emoji"] == "yes"
    assert phrase_to_style(before.infer([(original, original)]).preference) == {"emoji": "yes"}


def test_offline_aggregation_weighs_evidence_per_attribute_and_the_users_own_words():
    backend = OfflineBackend()
    phrases = ["brief, bullet points", "brief, casual", "brief, bullet points, with emojis"]
    answer = backend.aggregate([Candidate(p) for p in phrases])
    # a phrase that says nothing of an attribute neither supports nor dilutes it
    assert phrase_to_style(answer.preference) == {
        "length": "short", "format": "bullets", "tone": "casual", "emoji": "yes"
    }  # fmt: skip
    assert answer.usage.calls == 1
    split = backend.aggregate([Candidate("brief"), Candidate("detailed"), Candidate("brief")])
    assert phrase_to_style(split.preference) == {"length": "short"}  # 2 of the 3 that name it
    before = OfflineBackend(share_of_all=True).aggregate([Candidate(p) for p in phrases])
    assert phrase_to_style(before.preference) == {"length": "short", "format": "bullets"}
    own = backend.aggregate([Candidate("prose please", in_charge=True), *map(Candidate, phrases)])
    assert own.preference == "prose please; brief, casual, with emojis"  # the user's format wins
    single = backend.aggregate([Candidate("brief"), Candidate("brief")])
    assert single.preference == "brief" and single.usage.calls == 0  # used directly, no call


def test_offline_aggregation_lets_newer_entries_outvote_as_many_older_ones():
    backend = OfflineBackend()
    old, new = "casual, with emojis", "formal, no emojis"

    def aggregate(phrases: list[str]) -> dict[str, str]:  # oldest first
        candidates = [Candidate(p, recency=i) for i, p in enumerate(phrases)]
        return phrase_to_style(backend.aggregate(candidates[::-1]).preference)

    assert aggregate([old, old, old, new, new]) == phrase_to_style(new)  # 5.5 of 10 votes
    assert aggregate([old, old, old, old, new])["tone"] == "casual"  # one newer alone: 3 of 10
    assert aggregate([old, old, new])["tone"] == "casual"  # 2 of 4.5
    assert aggregate([new, new, old, old, old]) == phrase_to_style(old)  # the other way round


def test_the_llm_backend_sends_the_cipher_prompt_and_returns_a_phrase(chat_server):
    chat_server.script = [("answer", '"The user prefers: bullet points, brief."')]
    backend = LLMBackend(chat_server.url, "test-instruct", api_key="sk-test", timeout=2)
    pair = (rendered(format="prose"), rendered(format="bullets"))
    inferred = backend.infer([pair])
    assert inferred.preference == "bullet points, brief"
    assert (inferred.usage.calls, inferred.usage.prompt_tokens) == (1, 120)
    (request,) = chat_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "test-instruct" and body["temperature"] == 0
    user_message = body["messages"][-1]["content"]
    assert user_message == inference_prompt([pair])
    assert "generic preference in terms of writing style and formatting" in user_message


def test_the_llm_backend_aggregates_with_the_cipher_aggregation_prompt(chat_server):
    chat_server.script = [("answer", "- brief\n- bullet points")]
    backend = LLMBackend(chat_server.url, "test-instruct")
    answer = backend.aggregate([Candidate("brief, casual"), Candidate("bullets", in_charge=True)])
    assert answer.preference == "brief, bullet points"
    prompt = chat_server.requests[0]["body"]["messages"][-1]["content"]
    assert "- bullets (written by the user: it takes precedence)" in prompt
    assert "most represented writing preferences" in prompt
    assert "Authorization" not in chat_server.requests[0]["headers"]


@pytest.mark.parametrize(
    ("step", "message"),
    [(("status", 503), "HTTP 503"), (("sleep", 1.0), "timed out"), (("answer", "  "), "empty")],
)
def test_llm_failures_raise_inference_error(chat_server, step, message):
    chat_server.script = [step]
    backend = LLMBackend(chat_server.url, "test-instruct", timeout=0.3)
    with pytest.raises(InferenceError, match=message):
        backend.infer([("a b c", "a b d")])


def test_an_unreachable_or_unconfigured_llm_raises_inference_error():
    with pytest.raises(InferenceError, match="unreachable"):
        LLMBackend("http://127.0.0.1:9/v1", "m", timeout=0.5).infer([("a", "b")])
    with pytest.raises(InferenceError, match="ATTUNE_LLM_BASE_URL"):
        LLMBackend("", "")


def test_the_backend_comes_from_settings(settings, llm_settings):
    assert isinstance(backend_from_settings(), LLMBackend)
    settings.ATTUNE_INFERENCE_BACKEND = "offline"
    assert isinstance(backend_from_settings(), OfflineBackend)
    settings.ATTUNE_INFERENCE_BACKEND = "gpt"
    with pytest.raises(ValueError, match="offline or llm"):
        backend_from_settings()


def test_answers_are_cleaned_into_one_phrase_within_the_limit():
    assert clean_phrase("Preference: concise.\n", 100) == "concise"
    assert clean_phrase("* short\n* casual tone", 100) == "short, casual tone"
    assert clean_phrase("one two three four", 9) == "one two"
