"""Layer switches without a serving process: the user's setting (``/api/layers``), a request's
``attune.layers`` (checked by ``params``), and what ``plan_for`` leaves out for each."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.services import create_client_app
from apps.adapters.models import AdapterVersion, PreferenceCoefficient, PreferenceVector
from apps.generation import params, services
from apps.generation.models import LayerSettings
from apps.generation.selectors import plan_for
from apps.memory.models import MemoryEntry
from apps.privacy.selectors import user_data_jsonl
from apps.privacy.services import erase_user_data
from core.errors import GenerationError
from core.serving import GenerateRequest, GenerationParams
from tests.support.factories import PersonaFactory, UserFactory

pytestmark = pytest.mark.django_db
MESSAGES = [{"role": "user", "content": "The council met on Monday and approved the tram line."}]


def personalized_user():
    """A user with every layer available: an active adapter, an η on an active vector, a
    persona and a memory entry."""
    user = UserFactory()
    AdapterVersion.objects.create(
        user=user, version=1, status="active", method="dpo", base_model="attune/style-lm",
        base_fingerprint="f", rank=4, storage_path="sha256:" + "0" * 64,
    )  # fmt: skip
    PreferenceVector.objects.create(
        name="format-bullets-vs-prose", attribute="format", positive="bullets", negative="prose",
        base_model="attune/style-lm", base_fingerprint="f", rank=4, positive_path="p",
        negative_path="n",
    )  # fmt: skip
    PreferenceCoefficient.objects.create(user=user, vector_name="format-bullets-vs-prose", eta=0.5)
    PersonaFactory(user=user, text="I like bullet points.")
    MemoryEntry.objects.create(
        user=user, context_text="The council met.", preference="brief", origin="user",
        embedding=[0.05] * 384,
    )  # fmt: skip
    return user


# --- a request's attune.layers -------------------------------------------------------------


def body(**extra):
    return {"model": "attune", "messages": MESSAGES, **extra}


def test_a_request_names_layers_to_turn_off():
    chat = params.parse_request(body(attune={"layers": {"memory": False, "persona": True}}))
    assert chat.layers == {"memory": False, "persona": True}
    assert params.layers_off(chat.layers) == ("memory",)
    assert params.parse_request(body()).layers == {}
    assert params.parse_request(body(attune=None)).layers == {}


@pytest.mark.parametrize(
    ("attune", "param", "code"),
    [
        ({"layers": {"memory": "no"}}, "attune.layers.memory", "invalid_type"),
        ({"layers": {"memory": 0}}, "attune.layers.memory", "invalid_type"),
        ({"layers": {"memroy": False}}, "attune.layers.memroy", "unknown_parameter"),
        ({"layers": ["memory"]}, "attune.layers", "invalid_type"),
        ({"arbitrate": True}, "attune.arbitrate", "unknown_parameter"),
        ("layers", "attune", "invalid_type"),
    ],
)
def test_bad_attune_options_name_the_parameter(attune, param, code):
    with pytest.raises(GenerationError) as raised:
        params.parse_request(body(attune=attune))
    assert (raised.value.status, raised.value.param, raised.value.code) == (400, param, code)


def test_bad_attune_options_answer_400_in_openai_shape(client_for, user):
    """The API checks the body before it calls the serving process (none runs here)."""
    answer = client_for(user).post(
        "/v1/chat/completions", body(attune={"layers": {"adapter": "off"}}), format="json"
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == "attune.layers.adapter" and error["code"] == "invalid_type"
    assert error["type"] == "invalid_request_error" and "true or false" in error["message"]


def test_the_switches_travel_to_the_serving_process_and_back():
    request = services._request(UserFactory(), MESSAGES, {"layers": {"adapter": False}}, False)
    assert request.layers_off == ("adapter",)
    payload = json.loads(json.dumps(request.to_payload()))
    assert GenerateRequest.from_payload(payload).layers_off == ("adapter",)
    old = {"user_id": 1, "messages": MESSAGES, "params": GenerationParams().to_dict()}
    assert GenerateRequest.from_payload(old).layers_off == ()  # an older web process
    kept = services._request(UserFactory(), MESSAGES, {"layers": {"adapter": True}}, False)
    assert kept.layers_kept == ("adapter",) and kept.layers_off == ()
    assert GenerateRequest.from_payload(json.loads(json.dumps(kept.to_payload()))) == kept
    for bad in (["nope"], "memory", [{"x": 1}]):
        with pytest.raises(GenerationError):
            GenerateRequest.from_payload({**old, "layers_off": bad})


# --- plan_for --------------------------------------------------------------------------------


def test_everything_is_planned_while_every_layer_is_on():
    user = personalized_user()
    plan = plan_for(user, MESSAGES, requested_off=("memory",))  # no embedding model needed
    assert plan.adapter is not None and plan.adapter.label == f"user-{user.pk}-v1"
    assert plan.etas == {"format-bullets-vs-prose": 0.5} and plan.persona
    assert plan.layers_off == (("memory", "request"),)
    assert plan.layers_applied(plan.adapter.label, plan.etas) == ["persona", "adapter", "vectors"]


def test_memory_off_by_the_user_retrieves_nothing():
    user = personalized_user()
    services.set_layers(user, memory=False)
    with CaptureQueriesContext(connection) as captured:
        plan = plan_for(user, MESSAGES)
    assert plan.memory_ids == () and plan.preference == ""
    assert not any("memory_memoryentry" in q["sql"] for q in captured)  # not even looked at
    assert plan.persona and plan.adapter is not None  # the other layers stay
    report = plan.layers_report(plan.adapter.label, plan.etas)
    assert report == {"applied": ["persona", "adapter", "vectors"], "off": {"memory": "user"}}


def test_a_request_turns_the_adapter_off_for_that_request_only():
    user = personalized_user()
    without = plan_for(user, MESSAGES, requested_off=("adapter", "memory"))
    assert without.adapter is None and without.etas == {"format-bullets-vs-prose": 0.5}
    assert dict(without.layers_off)["adapter"] == "request"
    after = plan_for(user, MESSAGES, requested_off=("memory",))
    assert after.adapter is not None and "adapter" not in dict(after.layers_off)
    assert without.weights_key() != after.weights_key()  # other composed weights


def test_a_request_cannot_turn_on_what_the_user_turned_off():
    user = personalized_user()
    services.set_layers(user, persona=False, vectors=False)
    request = services._request(user, MESSAGES, {"layers": {"persona": True}}, False)
    plan = plan_for(user, MESSAGES, requested_off=(*request.layers_off, "memory"))
    assert plan.persona == "" and plan.vectors == ()
    assert dict(plan.layers_off) == {"persona": "user", "vectors": "user", "memory": "request"}
    with CaptureQueriesContext(connection) as captured:  # both weights layers off
        bare = plan_for(user, MESSAGES, requested_off=("adapter", "memory"))
    assert bare.adapter is None and bare.vectors == () and bare.weights_key() != plan.weights_key()
    assert not any("adapters_" in q["sql"] for q in captured)  # no weights read at all
    base = plan_for(user, MESSAGES, personalized=False)  # the base model: nothing to report
    assert base.layers_report("", {}) == {"applied": [], "off": {}}


# --- /api/layers ----------------------------------------------------------------------------


def test_switches_default_on_and_patch_changes_only_what_it_names(client_for, user):
    client = client_for(user)
    first = client.get("/api/layers")
    assert first.status_code == 200
    assert first.json() == {
        "memory": True, "persona": True, "adapter": True, "vectors": True, "updated_at": None
    }  # fmt: skip
    assert not LayerSettings.objects.filter(user=user).exists()  # reading creates nothing
    changed = client.patch("/api/layers", {"memory": False}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["memory"] is False and changed.json()["adapter"] is True
    client.patch("/api/layers", {"adapter": False}, format="json")
    assert LayerSettings.objects.get(user=user).switches() == {
        "memory": False, "persona": True, "adapter": False, "vectors": True
    }  # fmt: skip
    assert client.get("/api/layers").json()["updated_at"] is not None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"memory": "no"}, "memory"),
        ({"memory": 0}, "memory"),
        ({"memory": None}, "memory"),
        ({"memroy": False}, "memroy"),
        ({"updated_at": "2026-01-01T00:00:00Z", "mood": 1}, "mood"),
    ],
)
def test_patch_refuses_what_is_not_a_switch(client_for, user, data, field):
    answer = client_for(user).patch("/api/layers", data, format="json")
    assert answer.status_code == 400
    assert field in answer.json() and isinstance(answer.json()[field], list)
    assert not LayerSettings.objects.filter(user=user).exists()


def test_an_app_key_reads_and_sets_its_end_users_switches(api_client, user):
    issued = create_client_app(user, "notes-app")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.key}")
    answer = api_client.patch("/api/layers", {"user": "alice", "vectors": False}, format="json")
    assert answer.status_code == 200, answer.content
    alice = LayerSettings.objects.get(user__external_id="alice").user
    assert alice.client_app_id == issued.record.pk and alice != user
    assert api_client.get("/api/layers?user=alice").json()["vectors"] is False
    assert api_client.get("/api/layers?user=bob").json()["vectors"] is True
    assert not LayerSettings.objects.filter(user=user).exists()


def test_the_export_holds_the_switches_and_erasure_removes_them(user, other_user):
    services.set_layers(user, memory=False)
    services.set_layers(other_user, persona=False)
    lines = [json.loads(line) for line in b"".join(user_data_jsonl(user)).splitlines()]
    mine = [line["fields"] for line in lines if line["model"] == "generation.layersettings"]
    assert len(mine) == 1 and mine[0]["memory"] is False and mine[0]["persona"] is True
    deleted = erase_user_data(user)
    assert deleted["generation.LayerSettings"] == 1
    assert not LayerSettings.objects.filter(user=user).exists()
    assert LayerSettings.objects.filter(user=other_user).exists()


def test_the_schema_documents_the_switches_with_examples(client_for, user):
    schema = client_for(user).get("/api/schema/?format=json").json()
    operations = schema["paths"]["/api/layers"]
    assert set(operations) - {"parameters"} == {"get", "patch"}
    patch = operations["patch"]
    request = patch["requestBody"]["content"]["application/json"]
    assert request["examples"] and "memory" in str(request["examples"])
    assert "attune.layers.memory" not in str(patch)  # the API's field errors, not OpenAI's
    assert "UnknownLayer" in patch["responses"]["400"]["content"]["application/json"]["examples"]
    shown = schema["components"]["schemas"]["LayerSettings"]["properties"]["updated_at"]
    assert shown["nullable"] is True  # null until the user first changes a switch
    chat = schema["paths"]["/v1/chat/completions"]["post"]
    assert "attune.layers.memory" in str(chat["responses"]["400"])
    assert '"layers"' in str(chat["requestBody"]).replace("'", '"')
