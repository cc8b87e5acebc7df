"""Chunked request bodies (``Transfer-Encoding: chunked``, no ``Content-Length``) through a real
gunicorn, as ``./attune run`` serves: read in full up to ``ATTUNE_MAX_BODY_BYTES``, 413 beyond
(in OpenAI's shape on ``/v1``); never read as an empty body."""

from __future__ import annotations

import json

import pytest

from apps.accounts.services import issue_personal_token
from apps.feedback.models import Interaction
from tests.apps.common.servers import gunicorn, request
from tests.support.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
LIMIT = 4096


def chunks(data: bytes, size: int = 100) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_chunked_bodies_are_read_up_to_the_limit():
    user = UserFactory()
    headers = {
        "Authorization": f"Bearer {issue_personal_token(user, 't').key}",
        "Content-Type": "application/json",
    }
    prompt = "Summarize: " + " ".join(["the council met again."] * 20)
    body = json.dumps({"prompt": prompt, "output": "Met.", "source": "news"}).encode()
    assert len(body) < LIMIT
    with gunicorn(ATTUNE_MAX_BODY_BYTES=str(LIMIT)) as url:
        answer = request(url, "POST", "/api/interactions", chunks(body), headers)
        assert answer.status == 201, answer.body
        assert Interaction.objects.get(pk=json.loads(answer.body)["id"]).prompt == prompt

        exact = json.dumps({"prompt": "p" * (LIMIT - 40), "output": "o"}).encode()
        exact += b" " * (LIMIT - len(exact))  # exactly at the limit: accepted
        assert request(url, "POST", "/api/interactions", chunks(exact), headers).status == 201

        over = chunks(exact + b" ")
        answer = request(url, "POST", "/api/interactions", over, headers)
        assert answer.status == 413 and "detail" in json.loads(answer.body), answer.body
        answer = request(url, "POST", "/v1/chat/completions", over, headers)
        assert answer.status == 413, answer.body
        assert json.loads(answer.body)["error"]["code"] == "request_too_large"
        assert Interaction.objects.count() == 2
