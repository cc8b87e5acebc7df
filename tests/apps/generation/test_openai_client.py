"""The official ``openai`` package, pointed at a live Attune server, works as with OpenAI."""

from __future__ import annotations

import openai
import pytest

from apps.feedback.models import Interaction

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = [{"role": "user", "content": "The council met on Monday and approved the tram line."}]


def test_plain_completion(openai_client, user):
    completion = openai_client.chat.completions.create(
        model="attune", messages=MESSAGES, max_tokens=8, temperature=0
    )
    text = completion.choices[0].message.content
    assert completion.object == "chat.completion" and completion.model == "attune"
    assert completion.usage.completion_tokens > 0
    interaction_id = completion.choices[0].model_extra["interaction_id"]
    assert completion.model_extra["attune"]["interaction_ids"] == [interaction_id]
    assert Interaction.objects.get(pk=interaction_id, user=user).output == text


def test_streaming_completion(openai_client, user):
    stream = openai_client.chat.completions.create(
        model="attune", messages=MESSAGES, max_tokens=8, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    pieces, finish, ids, usage = [], None, None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
        if (chunk.model_extra or {}).get("attune"):
            ids = chunk.model_extra["attune"]["interaction_ids"]
    assert finish in {"stop", "length"} and usage is not None and usage.completion_tokens > 0
    assert Interaction.objects.get(pk=ids[0], user=user).output == "".join(pieces)


def test_errors_raise_the_openai_exceptions(openai_client, live_server):
    with pytest.raises(openai.NotFoundError) as err:
        openai_client.chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        openai_client.chat.completions.create(model="attune", messages=MESSAGES, temperature=5)
    assert err.value.param == "temperature"
    url = f"{live_server.url}/v1"
    with (
        openai.OpenAI(base_url=url, api_key="wrong", max_retries=0) as anonymous,
        pytest.raises(openai.AuthenticationError),
    ):
        anonymous.models.list()
    assert [m.id for m in openai_client.models.list()] == ["attune", "attune-base"]
