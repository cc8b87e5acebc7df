"""Errors nobody answered on purpose: JSON in the API's shape under ``/api`` (``{"detail"}``) and
``/v1`` (OpenAI's), a plain page elsewhere; 503 with ``Retry-After`` when the database is the
cause, wherever it fails (view, DRF view, the session save after the view); a bug is a logged
500."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

FAULTS = ["database-down", "drf-database-down", "session"]
BUGS = ["bug", "drf-bug"]


@pytest.fixture
def client(settings) -> Client:
    settings.ROOT_URLCONF = "tests.apps.common.faults"
    settings.SESSION_ENGINE = "tests.apps.common.faults"
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("fault", FAULTS)
def test_the_database_down_anywhere_is_a_503_in_the_apis_shape(client, fault):
    api = client.get(f"/api/faults/{fault}")
    assert (api.status_code, api.json()) == (
        503, {"detail": "The database is unavailable; retry shortly."}
    )  # fmt: skip
    assert int(api["Retry-After"]) > 0

    v1 = client.get(f"/v1/faults/{fault}")
    assert v1.status_code == 503 and int(v1["Retry-After"]) > 0
    assert v1.json()["error"]["code"] == "database_unavailable"

    page = client.get(f"/faults/{fault}")
    assert page.status_code == 503 and page["Content-Type"].startswith("text/html")
    assert b"503" in page.content and int(page["Retry-After"]) > 0


def test_the_database_down_mid_request_in_v1_is_a_503(client):
    answer = client.get("/v1/faults/openai-database-down")
    assert answer.status_code == 503 and int(answer["Retry-After"]) > 0
    assert answer.json()["error"]["code"] == "database_unavailable"


@pytest.mark.parametrize("bug", BUGS)
def test_a_bug_is_a_logged_json_500_under_the_apis(client, bug, caplog):
    with caplog.at_level(logging.ERROR, logger="django.request"):
        api = client.get(f"/api/faults/{bug}")
    assert api.status_code == 500 and set(api.json()) == {"detail"}
    assert "a bug" not in api.content.decode()  # no internals leak
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)

    v1 = client.get(f"/v1/faults/{bug}")
    error = v1.json()["error"]
    assert v1.status_code == 500 and (error["type"], error["param"]) == ("server_error", None)

    page = client.get(f"/faults/{bug}")
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
    assert b"Something went wrong" in page.content and b"a bug" not in page.content


def test_unknown_urls_answer_json_under_the_apis(client_for, user):
    client = client_for(user)
    api = client.get("/api/no-such-thing")
    assert api.status_code == 404 and set(api.json()) == {"detail"}
    v1 = client.post("/v1/no-such-thing", {}, format="json")
    error = v1.json()["error"]
    assert v1.status_code == 404 and error["code"] == "unknown_url"
    assert set(error) == {"message", "type", "param", "code"}
    assert client.get("/no-such-page").status_code == 404  # the web keeps its page


def test_a_bad_host_is_a_json_400_under_the_api(client_for, user):
    answer = client_for(user).get("/api/me", HTTP_HOST="evil.example")
    assert answer.status_code == 400 and set(answer.json()) == {"detail"}


def test_psycopg_own_connection_errors_count_as_the_database_down():
    """A raw psycopg cursor (the memory copy reads with one) raises psycopg's errors, unwrapped:
    they too answer 503, not 500."""
    import psycopg
    from django.db import OperationalError

    from apps.common.middleware import database_unavailable

    assert database_unavailable(psycopg.OperationalError("server closed the connection"))
    assert database_unavailable(OperationalError("gone"))
    assert not database_unavailable(psycopg.errors.UniqueViolation("duplicate key"))
    assert not database_unavailable(ValueError("not the database"))
