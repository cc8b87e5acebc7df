"""/api/my-data: export everything (JSONL), delete everything (hard), and the two as one flow."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from apps.accounts.models import PersonalToken, User
from apps.feedback.models import Comparison, Edit, Interaction, Rating
from apps.personas.models import PersonaProfile
from apps.privacy.selectors import owned_models
from tests.support.factories import (
    ComparisonFactory,
    EditFactory,
    InteractionFactory,
    PersonaFactory,
    RatingFactory,
)

pytestmark = pytest.mark.django_db


def records(response) -> list[dict]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-ndjson"
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def make_data(user: User) -> None:
    interaction = InteractionFactory(user=user, memory_entry_ids=[1, 2])
    RatingFactory(interaction=interaction)
    EditFactory(interaction=interaction)
    ComparisonFactory(user=user, interaction_a=interaction)
    PersonaFactory(user=user)


def test_every_app_with_owned_rows_is_covered():
    labels = {m._meta.label for m in owned_models()}
    assert {"feedback.Interaction", "feedback.Rating", "feedback.Edit", "feedback.Comparison",
            "personas.PersonaProfile"} <= labels  # fmt: skip


def test_export_holds_the_account_and_every_row_but_no_vectors(client_for, user, other_user):
    make_data(user)
    make_data(other_user)
    found = records(client_for(user).get("/api/my-data"))
    assert found[0]["model"] == "accounts.user" and found[0]["fields"]["id"] == user.pk
    assert "password" not in found[0]["fields"]
    by_model = {r["model"] for r in found[1:]}
    assert by_model == {"feedback.interaction", "feedback.rating", "feedback.edit",
                        "feedback.comparison", "personas.personaprofile"}  # fmt: skip
    assert all(r["fields"]["user_id"] == user.pk for r in found[1:])
    interaction = next(r for r in found if r["model"] == "feedback.interaction")["fields"]
    assert interaction["memory_entry_ids"] == [1, 2] and "embedding" not in interaction
    assert "embedding_model" in interaction


def test_delete_all_my_data_is_hard_and_leaves_others_and_my_account(client_for, user, other_user):
    make_data(user)
    make_data(other_user)
    client = client_for(user)
    response = client.delete("/api/my-data")
    assert response.status_code == 200
    assert response.json()["deleted"] == {
        "feedback.Comparison": 1, "feedback.Edit": 1, "feedback.Interaction": 1,
        "feedback.Rating": 1, "personas.PersonaProfile": 1,
    }  # fmt: skip
    for model in (Interaction, Rating, Edit, Comparison, PersonaProfile):
        assert not model.objects.filter(user=user).exists()
        assert model.objects.filter(user=other_user).count() == 1
    with connection.cursor() as cursor:  # hard delete: the rows (and their vectors) are gone
        cursor.execute("SELECT count(*) FROM feedback_interaction WHERE user_id = %s", [user.pk])
        assert cursor.fetchone()[0] == 0
    assert User.objects.filter(pk=user.pk).exists() and PersonalToken.objects.filter(user=user)
    assert client.get("/api/interactions").json()["count"] == 0
    assert client.delete("/api/my-data").json()["deleted"] == {}


def test_export_then_delete_is_one_flow(client_for, user):
    make_data(user)
    client = client_for(user)
    dpo = b"".join(client.get("/api/export/dpo").streaming_content)
    kto = b"".join(client.get("/api/export/kto").streaming_content)
    everything = records(client.get("/api/my-data"))
    deleted = client.delete("/api/my-data").json()["deleted"]

    assert sum(deleted.values()) == len(everything) - 1  # every exported row, nothing else
    assert len(dpo.splitlines()) == 2 and len(kto.splitlines()) == 1
    assert records(client.get("/api/my-data"))[1:] == []
    assert b"".join(client.get("/api/export/dpo").streaming_content) == b""


def test_staff_export_any_users_data_others_get_404(client_for, user, other_user, staff_user):
    make_data(other_user)
    staff = client_for(staff_user)
    theirs = records(staff.get(f"/api/my-data?user_id={other_user.pk}"))
    assert theirs[0]["fields"]["id"] == other_user.pk and len(theirs) == 6
    assert staff.get("/api/my-data?user_id=999999").status_code == 404
    client = client_for(user)
    assert client.get(f"/api/my-data?user_id={other_user.pk}").status_code == 404
    assert records(client.get(f"/api/my-data?user_id={user.pk}"))[0]["fields"]["id"] == user.pk
    bad = client.get("/api/my-data?user_id=abc")
    assert bad.status_code == 400 and "user_id" in bad.json()


def test_staff_delete_only_their_own_data(client_for, user, staff_user):
    make_data(user)
    client_for(staff_user).delete(f"/api/my-data?user_id={user.pk}")
    assert Interaction.objects.filter(user=user).exists()


def test_my_data_needs_authentication(api_client):
    assert api_client.get("/api/my-data").status_code == 401
    assert api_client.delete("/api/my-data").status_code == 401
