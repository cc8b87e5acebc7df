"""Layer switches end to end: ``PATCH /api/layers`` and the ``openai`` client's
``extra_body={"attune": {"layers": …}}`` against a live server and a real serving process."""

from __future__ import annotations

import openai
import pytest

from apps.feedback.models import Interaction
from apps.memory.models import MemoryEntry
from tests.support.factories import PersonaFactory

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = [{"role": "user", "content": "The council met on Monday and approved the tram line."}]


def ask(client: openai.OpenAI, **extra) -> tuple[dict, Interaction]:
    completion = client.chat.completions.create(
        model="attune", messages=MESSAGES, max_tokens=4, temperature=0, **extra
    )
    attune = completion.model_extra["attune"]
    return attune, Interaction.objects.get(pk=attune["interaction_ids"][0])


def test_switches_leave_layers_out_and_say_so(openai_client, client_for, user):
    PersonaFactory(user=user, text="I like bullet points.")
    entry = MemoryEntry.objects.create(
        user=user, context_text="The council met.", preference="brief, no emojis",
        origin="user", embedding=[0.05] * 384,
    )  # fmt: skip

    attune, recorded = ask(openai_client)  # every layer on
    assert attune["memory_entry_ids"] == [entry.pk] and attune["persona"] is True
    assert attune["layers"] == {"applied": ["memory", "persona"], "off": {}}
    assert recorded.layers == ["memory", "persona"]

    patched = client_for(user).patch("/api/layers", {"memory": False}, format="json")
    assert patched.status_code == 200, patched.content
    attune, recorded = ask(openai_client)  # the user's memory switch: no retrieval, no memory ids
    assert attune["memory_entry_ids"] == [] and attune["conditioning_preference"] == ""
    assert attune["layers"] == {"applied": ["persona"], "off": {"memory": "user"}}
    assert recorded.memory_entry_ids == [] and recorded.layers == ["persona"]

    off = {"attune": {"layers": {"persona": False, "memory": True}}}  # true cannot turn it on
    attune, recorded = ask(openai_client, extra_body=off)
    assert attune["persona"] is False and attune["memory_entry_ids"] == []
    assert attune["layers"] == {"applied": [], "off": {"memory": "user", "persona": "request"}}
    assert recorded.layers == []

    attune, _ = ask(openai_client)  # the request's switch was for that request only
    assert attune["persona"] is True and attune["layers"]["off"] == {"memory": "user"}

    with pytest.raises(openai.BadRequestError) as err:
        ask(openai_client, extra_body={"attune": {"layers": {"persona": "off"}}})
    assert err.value.param == "attune.layers.persona"
