"""/api/persona (your own profile) and /api/personas (profiles you may read)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from apps.personas.models import PersonaProfile
from tests.support.factories import PersonaFactory

pytestmark = pytest.mark.django_db

PROFILE = {"text": "I teach primary school.", "attributes": {"role": "teacher", "langs": ["en"]}}


def test_set_read_replace_change_delete_my_persona(client_for, user):
    client = client_for(user)
    assert client.get("/api/persona").status_code == 404
    created = client.put("/api/persona", PROFILE, format="json")
    assert created.status_code == 201, created.json()
    assert {k: created.json()[k] for k in PROFILE} == PROFILE
    assert client.get("/api/persona").json()["id"] == created.json()["id"]

    replaced = client.put("/api/persona", {"text": "I write code."}, format="json")
    assert replaced.status_code == 200 and replaced.json()["attributes"] == {}
    assert replaced.json()["id"] == created.json()["id"]
    changed = client.patch("/api/persona", {"attributes": {"tone": "dry"}}, format="json")
    assert changed.json() | {"updated_at": ""} == replaced.json() | {
        "attributes": {"tone": "dry"}, "updated_at": "",
    }  # fmt: skip

    assert client.delete("/api/persona").status_code == 204
    assert not PersonaProfile.objects.exists()
    assert client.delete("/api/persona").status_code == 404
    assert client.patch("/api/persona", {"text": "x"}, format="json").status_code == 404


def test_embedding_text_covers_text_and_attributes():
    persona = PersonaProfile(text=" I teach. ", attributes={"tone": "warm", "langs": ["en", "nl"]})
    assert persona.embedding_text() == 'I teach.\nlangs: ["en", "nl"]\ntone: warm'


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"attributes": ["not", "an", "object"]}, "attributes"),
        ({"attributes": {"k": "nul \x00"}}, "attributes"),
        ({"attributes": {"k": [[[[[[[[[["deep"]]]]]]]]]]}}, "attributes"),
        ({"attributes": {str(n): n for n in range(201)}}, "attributes"),
        ({"text": "x" * 8001}, "text"),
    ],
)
def test_invalid_personas_are_400s_and_keep_the_old_one(client_for, user, body, field):
    PersonaFactory(user=user, text="kept")
    client = client_for(user)
    for method in (client.put, client.patch):
        response = method("/api/persona", body, format="json")
        assert response.status_code == 400
        assert field in response.json()
    assert PersonaProfile.objects.get().text == "kept"


@override_settings(ATTUNE_MAX_PERSONA_CHARS=5)
def test_the_persona_length_limit_is_a_setting(client_for, user):
    response = client_for(user).put("/api/persona", {"text": "too long"}, format="json")
    assert response.status_code == 400 and "text" in response.json()


def test_personas_list_shows_only_mine_and_staff_see_all(client_for, user, other_user, staff_user):
    mine = PersonaFactory(user=user)
    theirs = PersonaFactory(user=other_user)
    client = client_for(user)
    assert [p["id"] for p in client.get("/api/personas").json()["results"]] == [mine.pk]
    assert client.get(f"/api/personas/{mine.pk}").status_code == 200
    assert client.get(f"/api/personas/{theirs.pk}").status_code == 404
    assert client.delete(f"/api/personas/{theirs.pk}").status_code == 405
    staff = client_for(staff_user)
    assert staff.get("/api/personas").json()["count"] == 2
    only_theirs = staff.get(f"/api/personas?user_id={other_user.pk}").json()["results"]
    assert [p["id"] for p in only_theirs] == [theirs.pk]
    assert staff.get(f"/api/personas/{theirs.pk}").json()["text"] == theirs.text
    assert staff.get("/api/persona").status_code == 404  # staff have no persona of their own


def test_my_persona_never_touches_another_users(client_for, user, other_user):
    theirs = PersonaFactory(user=other_user, text="theirs")
    client = client_for(user)
    assert client.put("/api/persona", {"text": "mine"}, format="json").status_code == 201
    assert client.delete("/api/persona").status_code == 204
    theirs.refresh_from_db()
    assert theirs.text == "theirs"


def test_persona_needs_authentication(api_client):
    assert api_client.get("/api/persona").status_code == 401
    assert api_client.get("/api/personas").status_code == 401
