"""/api/comparisons: A/B/tie between texts or interactions; change the choice; scoping."""

from __future__ import annotations

import pytest

from apps.feedback.models import Comparison
from tests.support.factories import ComparisonFactory, InteractionFactory

pytestmark = pytest.mark.django_db


def test_compare_two_texts(client_for, user):
    body = {"prompt": "Greet the team.", "response_a": "Dear team,", "response_b": "Hi all!",
            "choice": "b", "source": "email"}  # fmt: skip
    response = client_for(user).post("/api/comparisons", body, format="json")
    assert response.status_code == 201, response.json()
    assert {k: response.json()[k] for k in body} == body
    assert response.json()["interaction_a"] is None


def test_compare_two_interactions_takes_their_texts_and_prompt(client_for, user):
    a = InteractionFactory(user=user, output="Formal text.", source="news")
    b = InteractionFactory(user=user, output="Casual text!")
    response = client_for(user).post(
        "/api/comparisons", {"interaction_a": a.pk, "interaction_b": b.pk, "choice": "tie"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["response_a"], body["response_b"]) == ("Formal text.", "Casual text!")
    assert (body["prompt"], body["source"]) == (a.prompt, "news")
    assert (body["interaction_a"], body["interaction_b"]) == (a.pk, b.pk)


def test_the_texts_outlive_the_interactions(client_for, user):
    a, b = InteractionFactory(user=user), InteractionFactory(user=user)
    client = client_for(user)
    created = client.post(
        "/api/comparisons", {"interaction_a": a.pk, "interaction_b": b.pk, "choice": "a"},
        format="json",
    ).json()  # fmt: skip
    assert client.delete(f"/api/interactions/{a.pk}").status_code == 204
    kept = client.get(f"/api/comparisons/{created['id']}").json()
    assert kept["interaction_a"] is None and kept["response_a"] == a.output


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "p", "response_a": "x", "choice": "a"}, "response_b"),
        ({"response_a": "x", "response_b": "y", "choice": "a"}, "prompt"),
        ({"prompt": "p", "response_a": "x", "response_b": "y", "choice": "c"}, "choice"),
        ({"prompt": "p", "response_a": "x", "response_b": "y"}, "choice"),
        ({"prompt": "p", "response_a": "x", "response_b": "y" * 8001, "choice": "a"}, "response_b"),
        ({"prompt": "p", "response_a": "x", "interaction_b": -3, "choice": "a"}, "interaction_b"),
    ],
)
def test_invalid_comparisons_are_400s_naming_the_field(client_for, user, body, field):
    response = client_for(user).post("/api/comparisons", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Comparison.objects.exists()


def test_comparing_another_users_interaction_answers_404(client_for, user, other_user):
    mine, theirs = InteractionFactory(user=user), InteractionFactory(user=other_user)
    response = client_for(user).post(
        "/api/comparisons", {"interaction_a": mine.pk, "interaction_b": theirs.pk, "choice": "b"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 404 and "interaction_b" in response.json()
    assert not Comparison.objects.exists()


def test_change_the_choice_list_filter_delete(client_for, user):
    comparison = ComparisonFactory(user=user, choice="a", source="email")
    ComparisonFactory(user=user, source="news", choice="tie")
    client = client_for(user)
    response = client.patch(f"/api/comparisons/{comparison.pk}", {"choice": "b"}, format="json")
    assert response.status_code == 200 and response.json()["choice"] == "b"
    bad = client.patch(f"/api/comparisons/{comparison.pk}", {"choice": "x"}, format="json")
    assert bad.status_code == 400 and "choice" in bad.json()
    assert [c["id"] for c in client.get("/api/comparisons?source=email").json()["results"]] == [
        comparison.pk
    ]
    assert client.get("/api/comparisons?choice=tie").json()["count"] == 1
    assert client.delete(f"/api/comparisons/{comparison.pk}").status_code == 204
    assert Comparison.objects.count() == 1


def test_another_users_comparisons_answer_404(client_for, user, other_user):
    theirs = ComparisonFactory(user=other_user, choice="a")
    client = client_for(user)
    assert client.get(f"/api/comparisons/{theirs.pk}").status_code == 404
    patch = client.patch(f"/api/comparisons/{theirs.pk}", {"choice": "b"}, format="json")
    assert patch.status_code == 404
    assert client.delete(f"/api/comparisons/{theirs.pk}").status_code == 404
    assert client.get("/api/comparisons").json()["count"] == 0
    theirs.refresh_from_db()
    assert theirs.choice == "a"


def test_staff_read_any_comparison_but_change_only_their_own(client_for, staff_user, user):
    theirs = ComparisonFactory(user=user, choice="a")
    client = client_for(staff_user)
    assert client.get(f"/api/comparisons/{theirs.pk}").status_code == 200
    patch = client.patch(f"/api/comparisons/{theirs.pk}", {"choice": "b"}, format="json")
    assert patch.status_code == 404
    assert client.delete(f"/api/comparisons/{theirs.pk}").status_code == 404
    theirs.refresh_from_db()
    assert theirs.choice == "a"
