"""/api/edits: record an edit with its word-level cost and diff; no-ops; scoping; immutability."""

from __future__ import annotations

import random

import pytest

from apps.feedback import selectors
from apps.feedback.models import Edit, Interaction
from apps.feedback.services import edit_cost
from core.text import word_levenshtein
from tests.support.factories import EditFactory, InteractionFactory

pytestmark = pytest.mark.django_db


def test_an_edit_of_the_output_stores_distance_and_diff(client_for, user):
    interaction = InteractionFactory(user=user, output="The council met on Monday.")
    response = client_for(user).post(
        "/api/edits",
        {"interaction": interaction.pk, "edited": "Big news: the council met on Monday!"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["original"] == "The council met on Monday."
    assert body["distance"] == 4 and body["is_noop"] is False
    assert body["diff"] == [
        {"op": "delete", "text": "The"},
        {"op": "insert", "text": "Big news: the"},
        {"op": "equal", "text": "council met on"},
        {"op": "delete", "text": "Monday."},
        {"op": "insert", "text": "Monday!"},
    ]
    assert Edit.objects.get(pk=body["id"]).interaction_id == interaction.pk


def test_an_unchanged_text_is_stored_as_a_noop(client_for, user):
    interaction = InteractionFactory(user=user, output="Keep  this\nas is.")
    response = client_for(user).post(
        "/api/edits", {"interaction": interaction.pk, "edited": "Keep this as is."}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["distance"] == 0 and response.json()["is_noop"] is True
    assert Edit.objects.get().distance == 0


def test_an_explicit_original_is_used(client_for, user):
    interaction = InteractionFactory(user=user)
    response = client_for(user).post(
        "/api/edits",
        {"interaction": interaction.pk, "original": "one two three", "edited": "one 2 three four"},
        format="json",
    )
    assert response.json()["original"] == "one two three" and response.json()["distance"] == 2


def test_edit_cost_equals_word_levenshtein_and_its_diff_rebuilds_both_texts():
    rng = random.Random(7)
    vocabulary = ["a", "b", "c", "d", "e"]
    for _ in range(300):
        a = " ".join(rng.choices(vocabulary, k=rng.randint(0, 12)))
        b = " ".join(rng.choices(vocabulary, k=rng.randint(0, 12)))
        cost = edit_cost(a, b)
        assert cost.distance == word_levenshtein(a, b), (a, b)
        before = " ".join(op["text"] for op in cost.diff if op["op"] != "insert")
        after = " ".join(op["text"] for op in cost.diff if op["op"] != "delete")
        assert (before.split(), after.split()) == (a.split(), b.split()), (a, b, cost.diff)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "edited"),
        ({"edited": "x" * 8001}, "edited"),
        ({"edited": "ok", "original": "x" * 8001}, "original"),
        ({"edited": "nul \x00"}, "edited"),
        ({"edited": ["a", "list"]}, "edited"),
    ],
)
def test_invalid_edits_are_400s_naming_the_field(client_for, user, body, field):
    interaction = InteractionFactory(user=user)
    response = client_for(user).post(
        "/api/edits", {"interaction": interaction.pk, **body}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()
    assert not Edit.objects.exists()


def test_editing_an_unknown_or_another_users_interaction_answers_404(client_for, user, other_user):
    theirs = InteractionFactory(user=other_user)
    client = client_for(user)
    for interaction_id in (theirs.pk, theirs.pk + 1000):
        response = client.post(
            "/api/edits", {"interaction": interaction_id, "edited": "mine now"}, format="json"
        )
        assert response.status_code == 404 and "interaction" in response.json()
    assert not Edit.objects.exists()


def test_edits_are_records_list_read_delete_but_no_change(client_for, user):
    edit = EditFactory(interaction__user=user, interaction__source="email")
    EditFactory(interaction__user=user)
    client = client_for(user)
    assert client.get("/api/edits").json()["count"] == 2
    assert [e["id"] for e in client.get("/api/edits?source=email").json()["results"]] == [edit.pk]
    assert client.get(f"/api/edits/{edit.pk}").json()["edited"] == edit.edited
    assert client.patch(f"/api/edits/{edit.pk}", {"edited": "x"}, format="json").status_code == 405
    assert client.delete(f"/api/edits/{edit.pk}").status_code == 204
    assert Edit.objects.count() == 1


def test_another_users_edits_answer_404(client_for, user, other_user):
    theirs = EditFactory(interaction__user=other_user)
    client = client_for(user)
    assert client.get(f"/api/edits/{theirs.pk}").status_code == 404
    assert client.delete(f"/api/edits/{theirs.pk}").status_code == 404
    assert client.get("/api/edits").json()["count"] == 0
    assert Edit.objects.filter(pk=theirs.pk).exists()


def test_staff_read_any_edit_but_delete_only_their_own(client_for, staff_user, user):
    theirs = EditFactory(interaction__user=user)
    client = client_for(staff_user)
    assert client.get(f"/api/edits/{theirs.pk}").status_code == 200
    assert client.delete(f"/api/edits/{theirs.pk}").status_code == 404
    response = client.post(
        "/api/edits", {"interaction": theirs.interaction_id, "edited": "staff"}, format="json"
    )
    assert response.status_code == 404
    assert Edit.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_interaction_deleted_during_the_edit_answers_404_not_500(client_for, user, monkeypatch):
    interaction = InteractionFactory(user=user)
    read_output = selectors.owned_interaction_output

    def read_then_deleted_by_another_request(owner, interaction_id):
        output = read_output(owner, interaction_id)
        Interaction.objects.filter(pk=interaction_id).delete()
        return output

    monkeypatch.setattr(selectors, "owned_interaction_output", read_then_deleted_by_another_request)
    response = client_for(user).post(
        "/api/edits", {"interaction": interaction.pk, "edited": "too late"}, format="json"
    )
    assert response.status_code == 404 and "interaction" in response.json()
    assert not Edit.objects.exists()
