"""The official ``openai`` package, pointed at a live Attune server, works as with OpenAI."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from apps.accounts.services import issue_personal_token
from apps.feedback.models import Interaction

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = [{"role": "user", "content": "The council met on Monday and approved the tram line."}]


@pytest.fixture
def client(live_server, generation, user) -> Iterator[openai.OpenAI]:
    key = issue_personal_token(user, "openai").key
    with openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0) as client:
        yield client  # closing it ends the server's request threads and their DB sessions


def test_plain_completion(client, user):
    completion = client.chat.completions.create(
        model="attune", messages=MESSAGES, max_tokens=8, temperature=0
    )
    text = completion.choices[0].message.content
    assert completion.object == "chat.completion" and completion.model == "attune"
    assert completion.usage.completion_tokens > 0
    interaction_id = completion.choices[0].model_extra["interaction_id"]
    assert completion.model_extra["attune"]["interaction_ids"] == [interaction_id]
    assert Interaction.objects.get(pk=interaction_id, user=user).output == text


def test_streaming_completion(client, user):
    stream = client.chat.completions.create(
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


def test_errors_raise_the_openai_exceptions(client, live_server):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="attune", messages=MESSAGES, temperature=5)
    assert err.value.param == "temperature"
    url = f"{live_server.url}/v1"
    with (
        openai.OpenAI(base_url=url, api_key="wrong", max_retries=0) as anonymous,
        pytest.raises(openai.AuthenticationError),
    ):
        anonymous.models.list()
    assert [m.id for m in client.models.list()] == ["attune", "attune-base"]
