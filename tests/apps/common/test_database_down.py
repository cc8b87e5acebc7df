"""While the database is down, a real gunicorn answers every ``/api`` request with a JSON 503
(``{"detail"}``), every ``/v1`` request with OpenAI's 503 shape, and web pages with a plain 503
page, all with ``Retry-After``; never Django's HTML 500 or a stack trace. Once the database is
back, the same process answers as before."""

from __future__ import annotations

import json

import pytest

from apps.accounts.services import issue_personal_token
from tests.apps.common.servers import Answer, PostgresProxy, gunicorn, request
from tests.support.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def assert_api_503(answer: Answer) -> None:
    assert answer.status == 503, answer.body
    assert answer.headers["Content-Type"].startswith("application/json")
    assert int(answer.headers["Retry-After"]) > 0
    assert json.loads(answer.body) == {"detail": "The database is unavailable; retry shortly."}


def assert_openai_503(answer: Answer) -> None:
    assert answer.status == 503, answer.body
    assert int(answer.headers["Retry-After"]) > 0
    error = json.loads(answer.body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == ("service_unavailable_error", "database_unavailable")


def test_a_stopped_database_is_a_503_in_each_apis_shape(tmp_path):
    user = UserFactory()
    auth = {"Authorization": f"Bearer {issue_personal_token(user, 't').key}"}
    json_body = {**auth, "Content-Type": "application/json"}
    proxy = PostgresProxy(tmp_path)
    proxy.start()
    try:
        with gunicorn(proxy.database_url) as url:
            assert request(url, "GET", "/api/me", headers=auth).status == 200  # connected
            login = request(url, "GET", "/login")
            assert login.status == 200
            cookie = login.headers.get("Set-Cookie", "").split(";")[0]

            proxy.stop()
            assert_api_503(request(url, "GET", "/api/me", headers=auth))
            assert_api_503(request(url, "GET", "/api/interactions?limit=5", headers=auth))
            rating = json.dumps({"interaction": 1, "thumbs": "up"}).encode()
            assert_api_503(request(url, "POST", "/api/ratings", rating, json_body))
            assert_api_503(request(url, "GET", "/api/me", headers={"Cookie": cookie}))
            assert_api_503(request(url, "GET", "/api/no-such-endpoint", headers=auth))
            assert_openai_503(request(url, "GET", "/v1/models", headers=auth))
            chat = {"model": "attune", "messages": [{"role": "user", "content": "Hi"}]}
            answer = request(url, "POST", "/v1/chat/completions", json.dumps(chat).encode(),
                             json_body)  # fmt: skip
            assert_openai_503(answer)
            for page in ("/", "/login", "/admin/"):
                answer = request(url, "GET", page, headers={"Cookie": cookie})
                assert answer.status == 503, (page, answer.body)
                assert answer.headers["Content-Type"].startswith("text/html")
                assert int(answer.headers["Retry-After"]) > 0
                assert b"503" in answer.body and b"Traceback" not in answer.body

            proxy.start()  # back: the same process recovers on its next request
            me = request(url, "GET", "/api/me", headers=auth)
            assert me.status == 200 and json.loads(me.body)["id"] == user.pk
            assert request(url, "GET", "/v1/models", headers=auth).status == 200
    finally:
        proxy.stop()
