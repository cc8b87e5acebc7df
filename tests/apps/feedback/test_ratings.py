"""/api/ratings: one rating per interaction (set again = replaced), change, delete, scoping."""

from __future__ import annotations

import pytest

from apps.feedback.models import Rating
from tests.support.factories import InteractionFactory, RatingFactory

pytestmark = pytest.mark.django_db


def test_rate_with_stars_then_replace_with_thumbs(client_for, user):
    interaction = InteractionFactory(user=user)
    client = client_for(user)
    first = client.post(
        "/api/ratings", {"interaction": interaction.pk, "stars": 2, "comment": "meh"}, format="json"
    )
    assert first.status_code == 201, first.json()
    assert first.json() | {"id": 0, "created_at": "", "updated_at": ""} == {
        "id": 0, "user": user.pk, "interaction": interaction.pk, "thumbs": None, "stars": 2,
        "comment": "meh", "created_at": "", "updated_at": "",
    }  # fmt: skip
    again = client.post(
        "/api/ratings", {"interaction": interaction.pk, "thumbs": "up"}, format="json"
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["created_at"] == first.json()["created_at"]
    stored = Rating.objects.get()
    assert (stored.thumbs_up, stored.stars, stored.comment) == (True, None, "")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stars": 0}, "stars"),
        ({"stars": 6}, "stars"),
        ({"stars": "many"}, "stars"),
        ({"thumbs": "sideways"}, "thumbs"),
        ({"thumbs": "up", "stars": 3}, "stars"),
        ({}, "thumbs"),
        ({"stars": 3, "comment": "x" * 2001}, "comment"),
    ],
)
def test_out_of_range_and_ambiguous_ratings_are_400s_and_keep_the_old_rating(
    client_for, user, body, field
):
    rating = RatingFactory(interaction__user=user, stars=5, comment="kept")
    response = client_for(user).post(
        "/api/ratings", {"interaction": rating.interaction_id, **body}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()
    rating.refresh_from_db()
    assert (rating.stars, rating.comment) == (5, "kept")


@pytest.mark.parametrize("interaction", [None, "abc", 0, 2**63])
def test_a_missing_or_malformed_interaction_id_is_a_400(client_for, user, interaction):
    body = {"stars": 3} if interaction is None else {"interaction": interaction, "stars": 3}
    response = client_for(user).post("/api/ratings", body, format="json")
    assert response.status_code == 400 and "interaction" in response.json()


def test_rating_an_unknown_or_another_users_interaction_answers_404(client_for, user, other_user):
    theirs = InteractionFactory(user=other_user)
    client = client_for(user)
    for interaction_id in (theirs.pk, theirs.pk + 1000):
        response = client.post(
            "/api/ratings", {"interaction": interaction_id, "stars": 5}, format="json"
        )
        assert response.status_code == 404
        assert "interaction" in response.json()
    assert not Rating.objects.exists()


def test_change_a_rating(client_for, user):
    rating = RatingFactory(interaction__user=user, stars=4)
    client = client_for(user)
    response = client.patch(f"/api/ratings/{rating.pk}", {"thumbs": "down"}, format="json")
    assert response.status_code == 200
    assert (response.json()["thumbs"], response.json()["stars"]) == ("down", None)
    response = client.patch(
        f"/api/ratings/{rating.pk}", {"comment": "changed my mind"}, format="json"
    )
    assert response.json()["comment"] == "changed my mind" and response.json()["thumbs"] == "down"
    response = client.patch(f"/api/ratings/{rating.pk}", {"stars": 5}, format="json")
    assert (response.json()["thumbs"], response.json()["stars"]) == (None, 5)


@pytest.mark.parametrize(
    "body", [{"stars": None}, {"thumbs": None}, {"stars": 9}, {"thumbs": "up", "stars": 1}]
)
def test_an_invalid_change_is_a_400_and_changes_nothing(client_for, user, body):
    rating = RatingFactory(interaction__user=user, stars=4)
    response = client_for(user).patch(f"/api/ratings/{rating.pk}", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) & {"stars", "thumbs"}
    rating.refresh_from_db()
    assert (rating.stars, rating.thumbs_up) == (4, None)


def test_the_interaction_of_a_rating_cannot_be_changed(client_for, user):
    rating = RatingFactory(interaction__user=user)
    other = InteractionFactory(user=user)
    client_for(user).patch(f"/api/ratings/{rating.pk}", {"interaction": other.pk}, format="json")
    rating.refresh_from_db()
    assert rating.interaction_id != other.pk


def test_list_filter_and_delete(client_for, user):
    news = RatingFactory(interaction__user=user, interaction__source="news")
    email = RatingFactory(interaction__user=user, interaction__source="email")
    client = client_for(user)
    assert client.get("/api/ratings").json()["count"] == 2
    assert [r["id"] for r in client.get("/api/ratings?source=email").json()["results"]] == [
        email.pk
    ]
    found = client.get(f"/api/ratings?interaction={news.interaction_id}").json()["results"]
    assert [r["id"] for r in found] == [news.pk]
    assert client.get(f"/api/ratings/{news.pk}").json()["stars"] == 4
    assert client.delete(f"/api/ratings/{news.pk}").status_code == 204
    assert list(Rating.objects.values_list("pk", flat=True)) == [email.pk]


def test_another_users_ratings_answer_404(client_for, user, other_user):
    theirs = RatingFactory(interaction__user=other_user, stars=1)
    client = client_for(user)
    assert client.get(f"/api/ratings/{theirs.pk}").status_code == 404
    assert client.patch(f"/api/ratings/{theirs.pk}", {"stars": 5}, format="json").status_code == 404
    assert client.delete(f"/api/ratings/{theirs.pk}").status_code == 404
    assert client.get("/api/ratings").json()["count"] == 0
    theirs.refresh_from_db()
    assert theirs.stars == 1


def test_staff_read_any_rating_but_change_only_their_own(client_for, staff_user, user):
    theirs = RatingFactory(interaction__user=user, stars=1)
    client = client_for(staff_user)
    assert client.get(f"/api/ratings/{theirs.pk}").status_code == 200
    assert client.get(f"/api/ratings?user_id={user.pk}").json()["count"] == 1
    assert client.patch(f"/api/ratings/{theirs.pk}", {"stars": 5}, format="json").status_code == 404
    assert client.delete(f"/api/ratings/{theirs.pk}").status_code == 404
    response = client.post(
        "/api/ratings", {"interaction": theirs.interaction_id, "stars": 5}, format="json"
    )
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.stars == 1
