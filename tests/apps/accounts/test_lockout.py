"""Login lockout (django-axes) on the web UI's ``/login`` and the admin's ``/admin/login/``: after
``AXES_FAILURE_LIMIT`` failures the username + address pair is refused, even with the right
password, and the page says so; other addresses and API keys are not affected; ``axes_reset``
lifts it."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.accounts import services
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
LOCKED = "Too many failed log-ins for this username from your address"


@pytest.fixture(autouse=True)
def low_limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = 0.25  # hours: 15 minutes


@pytest.fixture
def user(db):
    return with_password(UserFactory())


def with_password(user):
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user


def log_in(client, path: str, username: str, password: str, address: str = "127.0.0.1"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_web_login_locks_after_the_limit_and_says_so(client, user):
    for _ in range(2):
        wrong = log_in(client, "/login", user.username, "wrong")
        assert wrong.status_code == 200 and LOCKED not in wrong.text
    third = log_in(client, "/login", user.username, "wrong")
    assert third.status_code == 429 and LOCKED in third.text and "15 minutes" in third.text
    assert third["Retry-After"] == "900"

    right = log_in(client, "/login", user.username, PASSWORD)  # the right password, refused
    assert right.status_code == 429 and LOCKED in right.text
    assert "_auth_user_id" not in client.session

    # another address, and the API, are not locked out
    key = services.issue_personal_token(user, "laptop").key
    assert client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    elsewhere = log_in(client, "/login", user.username, PASSWORD, address="10.0.0.7")
    assert elsewhere.status_code == 302


def test_axes_reset_lifts_the_lock(client, user):
    for _ in range(3):
        log_in(client, "/login", user.username, "wrong")
    assert log_in(client, "/login", user.username, PASSWORD).status_code == 429
    call_command("axes_reset", verbosity=0)
    assert log_in(client, "/login", user.username, PASSWORD).status_code == 302


def test_admin_login_locks_too(client):
    operator = with_password(UserFactory(is_staff=True, is_superuser=True))
    for _ in range(2):
        assert log_in(client, "/admin/login/", operator.username, "wrong").status_code == 200
    third = log_in(client, "/admin/login/", operator.username, "wrong")
    assert third.status_code == 429 and LOCKED in third.text
    right = log_in(client, "/admin/login/", operator.username, PASSWORD)
    assert right.status_code == 429 and LOCKED in right.text
    assert client.get("/admin/").status_code == 302  # still not logged in


def test_a_success_before_the_limit_resets_the_count(client, user):
    for _ in range(2):
        log_in(client, "/login", user.username, "wrong")
    assert log_in(client, "/login", user.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        assert log_in(client, "/login", user.username, "wrong").status_code == 200
