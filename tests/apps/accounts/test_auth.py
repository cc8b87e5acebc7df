"""Personal tokens and app keys: authentication, key management, end users per app namespace."""

from __future__ import annotations

import pytest

from apps.accounts import services
from apps.accounts.models import PersonalToken, User
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db


def bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_personal_token_authenticates_as_its_user(api_client, user):
    key = services.issue_personal_token(user, "laptop").key
    response = api_client.get("/api/me", **bearer(key))
    assert response.status_code == 200
    assert response.json()["username"] == user.username


def test_only_a_digest_of_the_key_is_stored(user):
    issued = services.issue_personal_token(user, "laptop")
    stored = PersonalToken.objects.get(pk=issued.record.pk)
    assert issued.key not in (stored.key_digest, stored.key_prefix)
    assert issued.key.startswith(stored.key_prefix)


@pytest.mark.parametrize("header", ["Bearer atk_nope", "Bearer", "Bearer a b"])
def test_bad_keys_are_refused(api_client, header):
    response = api_client.get("/api/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert "detail" in response.json()


def test_missing_credentials_are_refused(api_client):
    assert api_client.get("/api/me").status_code == 401


def test_token_lifecycle_through_the_api(client_for, user, api_client):
    client = client_for(user)
    created = client.post("/api/tokens", {"name": "ci"}, format="json")
    assert created.status_code == 201
    key = created.json()["key"]
    assert api_client.get("/api/me", **bearer(key)).status_code == 200

    listed = client.get("/api/tokens").json()["results"]
    assert {t["name"] for t in listed} == {"test", "ci"}
    assert all("key" not in t for t in listed)  # the key is shown once only

    assert client.delete(f"/api/tokens/{created.json()['id']}").status_code == 204
    assert api_client.get("/api/me", **bearer(key)).status_code == 401
    revoked = client.get(f"/api/tokens/{created.json()['id']}").json()
    assert revoked["is_active"] is False and revoked["revoked_at"]


def test_token_name_is_required(client_for, user):
    response = client_for(user).post("/api/tokens", {}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


def test_another_users_token_is_invisible(client_for, user, other_user):
    theirs = services.issue_personal_token(other_user, "theirs")
    client = client_for(user)
    assert client.get(f"/api/tokens/{theirs.record.pk}").status_code == 404
    assert client.delete(f"/api/tokens/{theirs.record.pk}").status_code == 404
    assert PersonalToken.objects.get(pk=theirs.record.pk).revoked_at is None


def test_app_key_acts_for_the_named_end_user(api_client, user):
    key = services.create_client_app(user, "chat app").key
    alice = api_client.get("/api/me", HTTP_X_ATTUNE_USER="alice", **bearer(key)).json()
    again = api_client.get("/api/me?user=alice", **bearer(key)).json()
    bob = api_client.get("/api/me", HTTP_X_ATTUNE_USER="bob", **bearer(key)).json()
    assert alice["external_id"] == "alice" and alice["id"] == again["id"]
    assert bob["id"] != alice["id"]
    assert not User.objects.get(pk=alice["id"]).has_usable_password()


def test_end_user_may_be_named_in_a_json_body_as_openai_does(api_client, user):
    key = services.create_client_app(user, "chat app").key
    for field in ("user", "safety_identifier"):
        response = api_client.generic(
            "GET", "/api/me", data=f'{{"{field}": "carol"}}', content_type="application/json",
            **bearer(key),
        )  # fmt: skip
        assert response.status_code == 200
        assert response.json()["external_id"] == "carol"


def test_same_end_user_name_in_two_apps_is_two_users(api_client):
    key_a = services.create_client_app(UserFactory(), "app a").key
    key_b = services.create_client_app(UserFactory(), "app b").key
    a = api_client.get("/api/me", HTTP_X_ATTUNE_USER="alice", **bearer(key_a)).json()
    b = api_client.get("/api/me", HTTP_X_ATTUNE_USER="alice", **bearer(key_b)).json()
    assert a["id"] != b["id"]
    assert a["client_app"] != b["client_app"]


def test_app_key_without_end_user_is_a_clear_400(api_client, user):
    key = services.create_client_app(user, "chat app").key
    response = api_client.get("/api/me", **bearer(key))
    assert response.status_code == 400
    assert "user" in response.json()


def test_invalid_end_user_name_is_a_clear_400(api_client, user):
    key = services.create_client_app(user, "chat app").key
    response = api_client.get("/api/me", HTTP_X_ATTUNE_USER="x" * 200, **bearer(key))
    assert response.status_code == 400
    assert "user" in response.json()


def test_revoked_app_key_is_refused(api_client, client_for, user):
    client = client_for(user)
    created = client.post("/api/apps", {"name": "chat"}, format="json").json()
    assert api_client.get("/api/me?user=a", **bearer(created["key"])).status_code == 200
    assert client.delete(f"/api/apps/{created['id']}").status_code == 204
    assert api_client.get("/api/me?user=a", **bearer(created["key"])).status_code == 401


def test_end_users_cannot_manage_keys(api_client, user):
    key = services.create_client_app(user, "chat app").key
    response = api_client.post(
        "/api/tokens", {"name": "x"}, format="json", HTTP_X_ATTUNE_USER="eve", **bearer(key)
    )
    assert response.status_code == 403


def test_the_token_lookup_brings_its_user_and_skips_inactive_users(api_client, user):
    from apps.accounts.selectors import active_token_for_key

    key = services.issue_personal_token(user, "laptop").key
    token = active_token_for_key(key)
    assert (token.name, token.user.username, token.user.pk) == ("laptop", user.username, user.pk)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert active_token_for_key(key) is None
    assert api_client.get("/api/me", **bearer(key)).status_code == 401
