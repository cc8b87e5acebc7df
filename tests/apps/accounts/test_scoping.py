"""Owner scoping: other users' rows answer 404; staff read all, change only their own."""

from __future__ import annotations

import pytest

from apps.accounts import services
from tests.support.testapp.models import Note

pytestmark = pytest.mark.django_db


def test_users_see_and_change_only_their_own_rows(client_for, user, other_user):
    mine = Note.objects.create(user=user, text="mine")
    theirs = Note.objects.create(user=other_user, text="theirs")
    client = client_for(user)

    assert [n["text"] for n in client.get("/test-api/notes").json()["results"]] == ["mine"]
    assert client.get(f"/test-api/notes/{mine.pk}").status_code == 200
    assert client.get(f"/test-api/notes/{theirs.pk}").status_code == 404
    assert client.patch(f"/test-api/notes/{theirs.pk}", {"text": "x"}).status_code == 404
    assert client.delete(f"/test-api/notes/{theirs.pk}").status_code == 404
    theirs.refresh_from_db()
    assert theirs.text == "theirs"


def test_created_rows_belong_to_the_caller(client_for, user, other_user):
    response = client_for(user).post(
        "/test-api/notes", {"text": "new", "user": other_user.pk}, format="json"
    )
    assert response.status_code == 201
    assert Note.objects.get(pk=response.json()["id"]).user == user


def test_staff_read_everything_but_change_only_their_own(client_for, staff_user, user):
    note = Note.objects.create(user=user, text="a user's")
    client = client_for(staff_user)
    assert client.get(f"/test-api/notes/{note.pk}").status_code == 200
    assert client.delete(f"/test-api/notes/{note.pk}").status_code == 404
    assert Note.objects.filter(pk=note.pk).exists()


def test_apps_cannot_reach_each_others_end_users(api_client, user, other_user):
    key_a = services.create_client_app(user, "a").key
    key_b = services.create_client_app(other_user, "b").key
    created = api_client.post(
        "/test-api/notes", {"text": "alice in a"}, format="json",
        HTTP_X_ATTUNE_USER="alice", HTTP_AUTHORIZATION=f"Bearer {key_a}",
    )  # fmt: skip
    assert created.status_code == 201
    as_b = {"HTTP_X_ATTUNE_USER": "alice", "HTTP_AUTHORIZATION": f"Bearer {key_b}"}
    assert api_client.get(f"/test-api/notes/{created.json()['id']}", **as_b).status_code == 404
    assert api_client.get("/test-api/notes", **as_b).json()["results"] == []


def test_queryset_helpers_for_anonymous_users_return_nothing(user):
    from django.contrib.auth.models import AnonymousUser

    Note.objects.create(user=user, text="x")
    assert not Note.objects.visible_to(AnonymousUser()).exists()
    assert Note.objects.visible_to(user).count() == 1
