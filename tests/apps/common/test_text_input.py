"""A lone UTF-16 surrogate or a NUL character in any text of a request answers 400 naming the
field (OpenAI's shape on ``/v1``), never a 500, and stores nothing: PostgreSQL and the tokenizer
refuse both. JSON carries a lone surrogate as the escape ``"\\ud800"``, as these requests send it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from apps.accounts.models import ClientApp, PersonalToken
from apps.feedback.models import Comparison, Edit, Interaction, Rating
from apps.memory.models import MemoryEntry
from apps.personas.models import PersonaProfile
from tests.support.factories import InteractionFactory

pytestmark = pytest.mark.django_db

SURROGATE = "a\ud800b"
NUL = "a\x00b"
BAD = pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])


def send(client, method: str, path: str, body: Any):
    """``body`` as JSON with every non-ASCII character escaped (a lone surrogate as \\ud800)."""
    return getattr(client, method)(path, json.dumps(body), content_type="application/json")


# (method, path, body with X where the bad text goes, the field the 400 names, model that must
# gain no row). {interaction} is an interaction of the caller.
CASES: list[tuple[str, str, Any, str, type | None]] = [
    ("post", "/api/interactions", {"prompt": "X", "output": "o"}, "prompt", Interaction),
    ("post", "/api/interactions", {"prompt": "p", "output": "X"}, "output", Interaction),
    ("post", "/api/interactions", {"prompt": "p", "output": "o", "source": "X"}, "source",
     Interaction),
    ("post", "/api/interactions", {"prompt": "p", "output": "o", "model_id": "X"}, "model_id",
     Interaction),
    ("post", "/api/interactions", {"prompt": "p", "output": "o", "adapter_version": "X"},
     "adapter_version", Interaction),
    ("post", "/api/interactions", {"prompt": "p", "output": "o", "conditioning_preference": "X"},
     "conditioning_preference", Interaction),
    ("post", "/api/interactions", {"messages": [{"role": "user", "content": "X"}], "output": "o"},
     "messages", Interaction),
    ("post", "/api/interactions", {"messages": [{"role": "X", "content": "c"}], "output": "o"},
     "messages", Interaction),
    ("post", "/api/interactions",
     {"prompt": "p", "output": "o", "preference_coefficients": {"X": 1.0}},
     "preference_coefficients", Interaction),
    ("post", "/api/ratings", {"interaction": "{interaction}", "thumbs": "up", "comment": "X"},
     "comment", Rating),
    ("post", "/api/ratings", {"interaction": "{interaction}", "thumbs": "X"}, "thumbs", Rating),
    ("post", "/api/edits", {"interaction": "{interaction}", "edited": "X"}, "edited", Edit),
    ("post", "/api/edits", {"interaction": "{interaction}", "original": "X", "edited": "e"},
     "original", Edit),
    ("post", "/api/comparisons",
     {"prompt": "X", "response_a": "a", "response_b": "b", "choice": "a"}, "prompt", Comparison),
    ("post", "/api/comparisons",
     {"prompt": "p", "response_a": "X", "response_b": "b", "choice": "a"}, "response_a",
     Comparison),
    ("post", "/api/comparisons",
     {"prompt": "p", "response_a": "a", "response_b": "X", "choice": "a"}, "response_b",
     Comparison),
    ("post", "/api/comparisons",
     {"prompt": "p", "response_a": "a", "response_b": "b", "choice": "X"}, "choice", Comparison),
    ("put", "/api/persona", {"text": "X"}, "text", PersonaProfile),
    ("put", "/api/persona", {"attributes": {"tone": "X"}}, "attributes", PersonaProfile),
    ("put", "/api/persona", {"attributes": {"X": "formal"}}, "attributes", PersonaProfile),
    ("post", "/api/memory", {"preference": "X", "context_text": "c"}, "preference", MemoryEntry),
    ("post", "/api/memory", {"preference": "brief", "context_text": "X"}, "context_text",
     MemoryEntry),
    ("post", "/api/memory", {"preference": "brief", "context_text": "c", "source": "X"}, "source",
     MemoryEntry),
    ("post", "/api/tokens", {"name": "X"}, "name", PersonalToken),
    ("post", "/api/apps", {"name": "X"}, "name", ClientApp),
    ("put", "/api/preference-coefficients", {"coefficients": {"X": 1.0}}, "coefficients", None),
    ("post", "/api/preference-vectors/fit", {"dimension": "X"}, "dimension", None),
]  # fmt: skip


STAFF_ONLY = {"/api/preference-vectors/fit"}


def fill(value: Any, bad: str, interaction: int) -> Any:
    """``value`` with "X" (in a value or a key) replaced by ``bad``, and the interaction id."""
    if value == "X":
        return bad
    if value == "{interaction}":
        return interaction
    if isinstance(value, dict):
        return {fill(k, bad, interaction): fill(v, bad, interaction) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(item, bad, interaction) for item in value]
    return value


@BAD
@pytest.mark.parametrize(
    ("method", "path", "body", "field", "model"),
    CASES,
    ids=[f"{c[0]} {c[1]} {c[3]}" for c in CASES],
)
def test_api_text_fields_refuse_unstorable_text(client_for, user, staff_user, bad, method, path,
                                                 body, field, model):  # fmt: skip
    caller = staff_user if path in STAFF_ONLY else user
    interaction = InteractionFactory(user=caller).pk
    client = client_for(caller)
    before = model.objects.count() if model else 0
    answer = send(client, method, path, fill(body, bad, interaction))
    assert answer.status_code == 400, answer.content
    assert field in answer.json(), answer.json()
    if model:
        assert model.objects.count() == before


def test_corrections_refuse_unstorable_text(client_for, user):
    client = client_for(user)
    entry = MemoryEntry.objects.create(user=user, preference="brief", context_text="c")
    assert send(client, "put", "/api/persona", {"text": "formal"}).status_code in (200, 201)
    for bad in (SURROGATE, NUL):
        answer = send(client, "patch", f"/api/memory/{entry.pk}", {"preference": bad})
        assert answer.status_code == 400 and "preference" in answer.json(), answer.content
        answer = send(client, "patch", "/api/persona", {"text": bad})
        assert answer.status_code == 400 and "text" in answer.json(), answer.content
    entry.refresh_from_db()
    assert entry.preference == "brief"
    assert PersonaProfile.objects.get(user=user).text == "formal"


MESSAGES = [{"role": "user", "content": "The council met on Monday."}]
PARTS = [{"type": "text", "text": "X"}]
V1_CASES = [
    ({"model": "attune", "messages": [{"role": "user", "content": "X"}]}, "messages[0].content"),
    ({"model": "attune", "messages": [{"role": "user", "content": PARTS}]},
     "messages[0].content"),
    ({"model": "attune", "messages": MESSAGES, "stop": "X"}, "stop"),
    ({"model": "attune", "messages": MESSAGES, "stop": ["ok", "X"]}, "stop"),
    ({"model": "X", "messages": MESSAGES}, "model"),
    ({"model": "attune", "messages": MESSAGES, "X": 1}, None),
]  # fmt: skip


@BAD
@pytest.mark.parametrize(("body", "param"), V1_CASES, ids=[c[1] or "key" for c in V1_CASES])
def test_chat_completions_refuse_unstorable_text(client_for, user, settings, bad, body, param):
    settings.ATTUNE_SERVING_URL = "http://127.0.0.1:1"  # refused before reaching the service
    answer = send(client_for(user), "post", "/v1/chat/completions", fill(body, bad, 0))
    assert answer.status_code in (400, 404), answer.content
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if param:
        assert error["param"] == param, error
    assert not Interaction.objects.exists()
