"""/api/memory: list, read, add, correct and delete learned preferences; scoping; limits."""

from __future__ import annotations

import pytest

from apps.memory.models import MemoryEntry
from tests.support.factories import EditFactory, InteractionFactory
from tests.support.processes import imports_torch

pytestmark = pytest.mark.django_db


def make_entry(user, preference: str = "brief, casual", **fields) -> MemoryEntry:
    fields.setdefault("origin", MemoryEntry.Origin.INFERRED)
    fields.setdefault("context_text", "Summarize: the council met on Monday.")
    return MemoryEntry.objects.create(user=user, preference=preference, **fields)


def test_a_user_lists_and_reads_only_their_own_entries(client_for, user, other_user):
    mine = make_entry(user, source="news", edit=EditFactory(user=user))
    theirs = make_entry(other_user)
    client = client_for(user)
    body = client.get("/api/memory").json()
    assert body["count"] == 1 and body["results"][0]["id"] == mine.pk
    assert body["results"][0]["edit"] == mine.edit_id and body["results"][0]["origin"] == "inferred"
    assert client.get(f"/api/memory/{mine.pk}").status_code == 200
    assert client.get(f"/api/memory/{theirs.pk}").status_code == 404
    assert client.patch(f"/api/memory/{theirs.pk}", {"preference": "x"}).status_code == 404
    assert client.delete(f"/api/memory/{theirs.pk}").status_code == 404
    assert MemoryEntry.objects.filter(pk=theirs.pk, preference="brief, casual").exists()


def test_staff_read_everyones_entries_but_change_only_their_own(client_for, staff_user, user):
    entry = make_entry(user)
    client = client_for(staff_user)
    assert client.get("/api/memory").json()["count"] == 1
    assert client.get(f"/api/memory?user_id={user.pk}").json()["count"] == 1
    assert client.get(f"/api/memory/{entry.pk}").status_code == 200
    assert client.delete(f"/api/memory/{entry.pk}").status_code == 404


def test_the_list_filters_by_source_and_origin_and_paginates(client_for, user):
    for source in ("news", "news", "wiki"):
        make_entry(user, source=source)
    make_entry(user, source="news", origin=MemoryEntry.Origin.USER)
    client = client_for(user)
    assert client.get("/api/memory?source=news").json()["count"] == 3
    assert client.get("/api/memory?source=news&origin=user").json()["count"] == 1
    page = client.get("/api/memory?limit=2&offset=0").json()
    assert page["count"] == 4 and len(page["results"]) == 2 and page["next"]
    assert client.get("/api/memory?origin=magic").status_code == 400


def test_a_user_adds_a_preference_for_a_context_text(
    client_for, user, django_capture_on_commit_callbacks
):
    body = {"preference": " bullet points ", "context_text": "Meeting notes.", "source": "meeting"}
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(user).post("/api/memory", body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["origin"] == "user" and created["preference"] == "bullet points"
    assert created["embedded_at"] is None and len(callbacks) == 1  # embedded after commit
    assert MemoryEntry.objects.get(pk=created["id"]).user == user


def test_a_user_adds_a_preference_for_one_of_their_interactions(client_for, user, other_user):
    interaction = InteractionFactory(user=user, source="news")
    client = client_for(user)
    response = client.post(
        "/api/memory", {"preference": "formal", "interaction": interaction.pk}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["context_text"] == interaction.prompt
    assert response.json()["source"] == "news"
    foreign = InteractionFactory(user=other_user)
    response = client.post(
        "/api/memory", {"preference": "formal", "interaction": foreign.pk}, format="json"
    )
    assert response.status_code == 404
    assert response.json() == {"interaction": [f"You have no interaction {foreign.pk}."]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"preference": "x" * 501, "context_text": "c"}, "preference"),
        ({"preference": "   ", "context_text": "c"}, "preference"),
        ({"preference": "brief"}, "context_text"),
        ({"preference": "brief", "context_text": "c\x00"}, "context_text"),
    ],
)
def test_invalid_preferences_are_refused_naming_the_field(client_for, user, body, field):
    response = client_for(user).post("/api/memory", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()
    assert not MemoryEntry.objects.exists()


def test_the_length_limit_is_a_setting_with_a_clear_message(client_for, user, settings):
    settings.ATTUNE_MAX_PREFERENCE_CHARS = 400
    entry = make_entry(user)
    client = client_for(user)
    response = client.patch(f"/api/memory/{entry.pk}", {"preference": "y" * 401}, format="json")
    assert response.status_code == 400
    assert response.json() == {"preference": ["Ensure this field has no more than 400 characters."]}
    assert client.patch(f"/api/memory/{entry.pk}", {"preference": "y" * 400}).status_code == 200


def test_correcting_a_learned_preference_makes_it_the_users_own(
    client_for, user, django_capture_on_commit_callbacks
):
    entry = make_entry(user, embedding=[0.0] * 383 + [1.0])
    client = client_for(user)
    response = client.patch(
        f"/api/memory/{entry.pk}", {"preference": "brief, no emojis"}, format="json"
    )
    assert response.status_code == 200
    corrected = response.json()
    assert corrected["origin"] == "user" and corrected["preference"] == "brief, no emojis"
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.patch(f"/api/memory/{entry.pk}", {"context_text": "Emails."})
    assert response.json()["embedded_at"] is None and len(callbacks) == 1
    assert client.put(f"/api/memory/{entry.pk}", {"preference": "x"}).status_code == 405


def test_a_user_deletes_an_entry(client_for, user):
    entry = make_entry(user)
    assert client_for(user).delete(f"/api/memory/{entry.pk}").status_code == 204
    assert not MemoryEntry.objects.exists()


def test_every_memory_endpoint_is_documented_with_examples(client_for, user):
    schema = client_for(user).get("/api/schema/?format=json").json()
    assert set(schema["paths"]["/api/memory"]) == {"get", "post"}
    assert set(schema["paths"]["/api/memory/{id}"]) - {"parameters"} == {"get", "patch", "delete"}
    post = schema["paths"]["/api/memory"]["post"]
    assert post["requestBody"]["content"]["application/json"]["examples"]
    assert post["responses"]["400"]["content"]["application/json"]["examples"]
    names = {p["name"] for p in schema["paths"]["/api/memory"]["get"]["parameters"]}
    assert {"source", "origin", "user_id", "limit", "offset"} <= names


def test_the_memory_web_side_does_not_import_torch():
    assert not imports_torch(
        "apps.memory.api.views", "apps.memory.services", "apps.memory.selectors",
        "apps.memory.tasks", "apps.memory.llm", "apps.feedback.services",
    )  # fmt: skip


def test_services_refuse_a_preference_over_the_limit_with_a_clear_error(user, settings):
    from apps.memory.services import add_preference
    from core.errors import InvalidValue

    settings.ATTUNE_MAX_PREFERENCE_CHARS = 400
    with pytest.raises(InvalidValue, match="at most 400 characters; got 401") as refused:
        add_preference(user, preference="z" * 401, context_text="Emails to the team.")
    assert refused.value.field == "preference"
    assert not MemoryEntry.objects.exists()
