"""/api/interactions: record, list with filters, read, delete; scoping; bad input answers 4xx."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.feedback.models import Edit, Interaction, Rating
from tests.support.factories import EditFactory, InteractionFactory, RatingFactory

pytestmark = pytest.mark.django_db

FULL = {
    "prompt": "Summarize: the council approved the tram line.",
    "source": "news",
    "output": "Council says yes to the tram.",
    "model_id": "attune/style-lm",
    "adapter_version": "u1-v3",
    "preference_coefficients": {"casual": 1.0, "emoji": -0.5},
    "memory_entry_ids": [4, 9],
    "conditioning_preference": "short sentences",
}


def test_create_records_what_personalized_the_output(client_for, user):
    response = client_for(user).post("/api/interactions", FULL, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: body[k] for k in FULL} == FULL
    assert body["user"] == user.pk and body["embedding_model"] == "" and body["embedded_at"] is None
    stored = Interaction.objects.get(pk=body["id"])
    assert stored.memory_entry_ids == [4, 9] and stored.preference_coefficients["emoji"] == -0.5


def test_chat_messages_are_flattened_into_the_prompt(client_for, user):
    messages = [
        {"role": "system", "content": "You write newsletters."},
        {"role": "user", "content": "Summarize the council meeting."},
    ]
    body = (
        client_for(user)
        .post("/api/interactions", {"messages": messages, "output": "Done."}, format="json")
        .json()
    )
    assert body["messages"] == messages
    assert body["prompt"] == (
        "system: You write newsletters.\n\nuser: Summarize the council meeting."
    )
    single = client_for(user).post(
        "/api/interactions", {"messages": messages[1:], "output": "Done."}, format="json"
    )
    assert single.json()["prompt"] == "Summarize the council meeting."


def test_list_is_paginated_and_filtered_by_source_and_dates(client_for, user):
    old = InteractionFactory(user=user, source="email")
    Interaction.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    new = InteractionFactory(user=user, source="news")
    client = client_for(user)

    page = client.get("/api/interactions?limit=1").json()
    assert page["count"] == 2 and len(page["results"]) == 1 and page["next"]
    assert [i["id"] for i in client.get("/api/interactions?source=email").json()["results"]] == [
        old.pk
    ]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    recent = client.get("/api/interactions", {"created_after": since}).json()["results"]
    assert [i["id"] for i in recent] == [new.pk]
    before = client.get("/api/interactions", {"created_before": since}).json()["results"]
    assert [i["id"] for i in before] == [old.pk]


def test_bad_filter_values_name_the_parameter(client_for, user):
    client = client_for(user)
    response = client.get("/api/interactions?created_after=yesterday")
    assert response.status_code == 400 and "created_after" in response.json()
    response = client.get(f"/api/interactions?user_id={10**30}")
    assert response.status_code == 400 and "user_id" in response.json()
    response = client.get("/api/interactions?source=a%00b")
    assert response.status_code == 400 and "source" in response.json()


def test_delete_is_hard_and_takes_ratings_and_edits(client_for, user):
    interaction = InteractionFactory(user=user)
    RatingFactory(interaction=interaction)
    EditFactory(interaction=interaction)
    client = client_for(user)
    assert client.delete(f"/api/interactions/{interaction.pk}").status_code == 204
    assert not Interaction.objects.filter(pk=interaction.pk).exists()
    assert not Rating.objects.exists() and not Edit.objects.exists()
    assert client.get(f"/api/interactions/{interaction.pk}").status_code == 404


def test_interactions_are_records_not_editable(client_for, user):
    interaction = InteractionFactory(user=user)
    client = client_for(user)
    assert client.patch(f"/api/interactions/{interaction.pk}", {}).status_code == 405
    assert client.put(f"/api/interactions/{interaction.pk}", {}).status_code == 405


def test_another_users_interactions_answer_404(client_for, user, other_user):
    theirs = InteractionFactory(user=other_user)
    client = client_for(user)
    assert client.get(f"/api/interactions/{theirs.pk}").status_code == 404
    assert client.delete(f"/api/interactions/{theirs.pk}").status_code == 404
    assert client.get("/api/interactions").json()["results"] == []
    assert client.get(f"/api/interactions?user_id={other_user.pk}").json()["results"] == []
    assert Interaction.objects.filter(pk=theirs.pk).exists()


def test_staff_read_everyones_interactions_but_delete_only_their_own(client_for, staff_user, user):
    theirs = InteractionFactory(user=user)
    InteractionFactory()
    client = client_for(staff_user)
    assert client.get(f"/api/interactions/{theirs.pk}").status_code == 200
    assert client.get("/api/interactions").json()["count"] == 2
    assert client.get(f"/api/interactions?user_id={user.pk}").json()["count"] == 1
    assert client.delete(f"/api/interactions/{theirs.pk}").status_code == 404
    assert Interaction.objects.filter(pk=theirs.pk).exists()


BASE = {"prompt": "p", "output": "x"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"output": "x"}, "prompt"),
        ({"prompt": "p"}, "output"),
        ({**BASE, "messages": [{"role": "king", "content": "hi"}]}, "messages"),
        ({**BASE, "messages": "not a list"}, "messages"),
        ({**BASE, "preference_coefficients": {"a": "lots"}}, "preference_coefficients"),
        ({**BASE, "preference_coefficients": [1, 2]}, "preference_coefficients"),
        ({**BASE, "preference_coefficients": {"\x00": 1}}, "preference_coefficients"),
        ({**BASE, "memory_entry_ids": [0]}, "memory_entry_ids"),
        ({**BASE, "memory_entry_ids": [2**63]}, "memory_entry_ids"),
        ({"prompt": "p\x00", "output": "x"}, "prompt"),
        ({**BASE, "source": "s" * 65}, "source"),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(client_for, user, body, field):
    response = client_for(user).post("/api/interactions", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Interaction.objects.exists()


def test_lone_surrogates_are_refused(client_for, user):
    raw = '{"prompt": "p", "output": "broken \\ud800 text"}'
    response = client_for(user).post("/api/interactions", raw, content_type="application/json")
    assert response.status_code == 400 and "output" in response.json()
    assert not Interaction.objects.exists()


def test_nan_and_infinity_are_refused(client_for, user):
    for number in ("NaN", "Infinity", "1e999"):
        response = client_for(user).post(
            "/api/interactions",
            f'{{"prompt": "p", "output": "x", "preference_coefficients": {{"a": {number}}}}}',
            content_type="application/json",
        )
        assert response.status_code == 400, number
    assert not Interaction.objects.exists()


@override_settings(ATTUNE_MAX_PROMPT_CHARS=10, ATTUNE_MAX_OUTPUT_CHARS=5, ATTUNE_MAX_MESSAGES=1)
def test_maximum_lengths_are_settings(client_for, user):
    client = client_for(user)
    too_long = client.post("/api/interactions", {"prompt": "p" * 11, "output": "x"}, format="json")
    assert too_long.status_code == 400 and "prompt" in too_long.json()
    too_long = client.post("/api/interactions", {"prompt": "p", "output": "x" * 6}, format="json")
    assert too_long.status_code == 400 and "output" in too_long.json()
    messages = [{"role": "user", "content": "a"}] * 2
    too_many = client.post(
        "/api/interactions", {"messages": messages, "output": "x"}, format="json"
    )
    assert too_many.status_code == 400 and "messages" in too_many.json()
    fits = client.post("/api/interactions", {"prompt": "p" * 10, "output": "x" * 5}, format="json")
    assert fits.status_code == 201


@pytest.mark.parametrize(
    "raw", ['{"prompt": "p", "output": ', "[" * 100_000, "\xff\xfe", '["a list"]', '"text"']
)
def test_malformed_json_is_a_400(client_for, user, raw):
    response = client_for(user).post("/api/interactions", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()
    assert not Interaction.objects.exists()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_oversized_body_is_a_413(client_for, user):
    body = {"prompt": "p" * 2000, "output": "x"}
    response = client_for(user).post("/api/interactions", body, format="json")
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert not Interaction.objects.exists()


def test_unauthenticated_requests_are_refused(api_client):
    assert api_client.get("/api/interactions").status_code == 401
    assert api_client.post("/api/interactions", FULL, format="json").status_code == 401


def test_out_of_range_ids_in_paths_answer_404(client_for, user):
    assert client_for(user).get(f"/api/interactions/{10**30}").status_code == 404


def test_client_apps_record_feedback_for_their_own_end_users_only(api_client, user, other_user):
    from apps.accounts.services import create_client_app

    as_a = {"HTTP_AUTHORIZATION": f"Bearer {create_client_app(user, 'a').key}"}
    as_b = {"HTTP_AUTHORIZATION": f"Bearer {create_client_app(other_user, 'b').key}"}
    body = {**BASE, "user": "alice"}  # the end user named in the body, as OpenAI's API does
    created = api_client.post("/api/interactions", body, format="json", **as_a)
    assert created.status_code == 201
    interaction = created.json()["id"]
    rating = {"interaction": interaction, "stars": 5, "user": "alice"}
    assert api_client.post("/api/ratings", rating, format="json", **as_a).status_code == 201
    assert api_client.post("/api/ratings", rating, format="json", **as_b).status_code == 404
    assert api_client.get(f"/api/interactions/{interaction}?user=alice", **as_b).status_code == 404
