"""``/v1/chat/completions`` and ``/v1/models`` against a real serving process: personalization
follows the authenticated user, every choice is recorded, and bad requests answer OpenAI errors."""

from __future__ import annotations

import json

import pytest

from apps.accounts.services import create_client_app
from apps.adapters.models import AdapterVersion, PreferenceCoefficient, PreferenceVector
from apps.feedback.models import Interaction
from apps.memory.models import MemoryEntry
from tests.apps.generation.conftest import save_adapter
from tests.support.factories import PersonaFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = [{"role": "user", "content": "The council met on Monday and approved the tram line."}]


def chat(client, **body):
    return client.post("/v1/chat/completions", body, format="json")


def sse(response) -> list:
    text = b"".join(response.streaming_content).decode()
    events = [line[len("data: ") :] for line in text.split("\n\n") if line.startswith("data: ")]
    return [e if e == "[DONE]" else json.loads(e) for e in events]


def test_plain_completion_records_the_interaction(client_for, user, generation):
    answer = chat(client_for(user), model="attune", messages=MESSAGES, max_tokens=8, temperature=0)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["object"] == "chat.completion" and body["model"] == "attune"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in {"stop", "length"}
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    interaction = Interaction.objects.get(pk=choice["interaction_id"])
    assert body["attune"]["interaction_ids"] == [interaction.pk]
    assert interaction.user == user and interaction.output == choice["message"]["content"]
    assert interaction.model_id == "attune/style-lm" and interaction.messages == MESSAGES
    assert interaction.adapter_version == "" and interaction.memory_entry_ids == []
    assert interaction.source == ""  # a free message names no source


def test_an_instruction_records_its_source(client_for, user, generation):
    from core.prompting import build_instruction

    asked = [{"role": "user", "content": build_instruction("summarize", "Facts.", None, "news")}]
    answer = chat(client_for(user), model="attune", messages=asked, max_tokens=4, temperature=0)
    assert answer.status_code == 200, answer.content
    interaction = Interaction.objects.get(pk=answer.json()["choices"][0]["interaction_id"])
    assert interaction.source == "news"


def test_streaming_chunks_end_with_done(client_for, user, generation):
    answer = chat(
        client_for(user), model="attune", messages=MESSAGES, max_tokens=10, temperature=0,
        stream=True, stream_options={"include_usage": True},
    )  # fmt: skip
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/event-stream")
    events = sse(answer)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    final = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])
    interaction = Interaction.objects.get(pk=final["attune"]["interaction_ids"][0])
    assert final["choices"][0]["interaction_id"] == interaction.pk
    assert interaction.output == text
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_personalization_follows_the_user(client_for, generation):
    user, other = UserFactory(), UserFactory()
    path, fingerprint = save_adapter(
        generation.var, generation.adapter_root, f"user-{user.pk}", seed=1
    )
    AdapterVersion.objects.create(
        user=user, version=1, status="active", method="dpo", base_model="attune/style-lm",
        base_fingerprint=fingerprint, rank=4, storage_path=path,
    )  # fmt: skip
    positive, _ = save_adapter(generation.var, generation.adapter_root, "vec-pos", seed=2)
    negative, _ = save_adapter(generation.var, generation.adapter_root, "vec-neg", seed=3)
    PreferenceVector.objects.create(
        name="format-bullets-vs-prose", attribute="format", positive="bullets", negative="prose",
        base_model="attune/style-lm", base_fingerprint=fingerprint, rank=4,
        positive_path=positive, negative_path=negative,
    )  # fmt: skip
    PreferenceCoefficient.objects.create(user=user, vector_name="format-bullets-vs-prose", eta=0.5)
    PersonaFactory(user=user, text="I like bullet points.")
    entry = MemoryEntry.objects.create(
        user=user, context_text="The council met.", preference="brief, no emojis",
        origin="user", embedding=[0.05] * 384,
    )  # fmt: skip
    body = {"messages": MESSAGES, "max_tokens": 12, "temperature": 0}
    mine = chat(client_for(user), model="attune", **body).json()
    base = chat(client_for(user), model="attune-base", **body).json()
    theirs = chat(client_for(other), model="attune", **body).json()

    assert mine["attune"]["adapter_version"] == f"user-{user.pk}-v1"
    assert mine["attune"]["preference_coefficients"] == {"format-bullets-vs-prose": 0.5}
    assert mine["attune"]["memory_entry_ids"] == [entry.pk] and mine["attune"]["persona"]
    texts = [r["choices"][0]["message"]["content"] for r in (mine, base, theirs)]
    assert texts[0] != texts[1]  # the user's weights change what the model writes
    assert texts[1] == texts[2]  # a user without any personalization gets the base model
    recorded = Interaction.objects.get(pk=mine["choices"][0]["interaction_id"])
    assert recorded.adapter_version == f"user-{user.pk}-v1"
    assert recorded.preference_coefficients == {"format-bullets-vs-prose": 0.5}
    assert recorded.memory_entry_ids == [entry.pk]
    assert recorded.conditioning_preference == "brief, no emojis"
    plain = Interaction.objects.get(pk=base["choices"][0]["interaction_id"])
    assert plain.adapter_version == "" and plain.conditioning_preference == ""


def test_app_key_acts_for_the_named_end_user(api_client, user, generation):
    issued = create_client_app(user, "notes-app")
    key = issued.key
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    answer = chat(api_client, model="attune", messages=MESSAGES, max_tokens=4, user="alice")
    assert answer.status_code == 200, answer.content
    interaction = Interaction.objects.get(pk=answer.json()["choices"][0]["interaction_id"])
    assert interaction.user != user and interaction.user.external_id == "alice"
    assert interaction.user.client_app_id == issued.record.pk
    missing = chat(api_client, model="attune", messages=MESSAGES, max_tokens=4)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "user"


def test_n_candidates_are_each_recorded(client_for, user, generation):
    answer = chat(client_for(user), model="attune", messages=MESSAGES, max_tokens=6, n=3, seed=11)
    body = answer.json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    ids = [c["interaction_id"] for c in body["choices"]]
    assert body["attune"]["interaction_ids"] == ids and len(set(ids)) == 3
    assert body["attune"]["reranked"] is False  # no reward model yet: candidates keep their order
    assert Interaction.objects.filter(pk__in=ids, user=user).count() == 3


def test_service_entry_points_for_the_web_ui(user, generation):
    from apps.generation import services
    from core.errors import GenerationError

    completion = services.generate(user, MESSAGES, max_tokens=6, temperature=0)
    assert completion.choices[0].interaction_id == completion.interaction_ids[0]
    started, *deltas, done = list(services.generate_stream(user, MESSAGES, max_tokens=6,
                                                           temperature=0))  # fmt: skip
    assert isinstance(started, services.Started) and isinstance(done, services.Completion)
    assert all(isinstance(d, services.Delta) for d in deltas)
    assert "".join(d.text for d in deltas) == done.text == completion.text  # greedy: same text
    with pytest.raises(GenerationError) as err:
        services.generate(user, MESSAGES, temperature=9)
    assert err.value.status == 400 and err.value.param == "temperature"


def test_streaming_several_candidates(client_for, user, generation):
    answer = chat(
        client_for(user), model="attune", messages=MESSAGES, max_tokens=6, n=2, seed=3,
        stream=True,
    )  # fmt: skip
    chunks = sse(answer)[:-1]
    texts = {0: "", 1: ""}
    for chunk in chunks:
        for choice in chunk["choices"]:
            texts[choice["index"]] += choice["delta"].get("content") or ""
    final = chunks[-1]
    ids = [c["interaction_id"] for c in final["choices"]]
    assert final["attune"]["interaction_ids"] == ids and len(set(ids)) == 2
    outputs = dict(Interaction.objects.filter(pk__in=ids).values_list("pk", "output"))
    assert [outputs[i] for i in ids] == [texts[0], texts[1]]
