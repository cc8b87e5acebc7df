"""Fair use on the API: the page-size ceiling, request throttles (per user, per client app,
stricter for generation) with 429 + ``Retry-After`` (OpenAI's shape under ``/v1``), and wrong
keys counted per address. The suite's settings lift every limit; each test lowers its own."""

from __future__ import annotations

import secrets

import pytest
from django.core.cache import cache

from apps.accounts import services
from tests.support.factories import InteractionFactory
from tests.support.processes import REDIS_URL

pytestmark = pytest.mark.django_db

CHAT = {"model": "no-such-model", "messages": [{"role": "user", "content": "Hi."}]}


def bearer(key: str, address: str = "127.0.0.1") -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}", "REMOTE_ADDR": address}


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()  # counters of earlier tests (the table outlives transactional tests)


def assert_openai_rate_limit(response) -> None:
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")  # as OpenAI
    assert error["param"] is None
    assert error["message"]


# --- page size


def test_a_huge_limit_answers_at_most_the_maximum_page(client_for, user, settings):
    settings.ATTUNE_MAX_PAGE_SIZE = 3
    InteractionFactory.create_batch(5, user=user)
    client = client_for(user)

    page = client.get("/api/interactions?limit=1000000").json()
    assert (len(page["results"]), page["count"]) == (3, 5)
    assert "cursor=" in page["next"] and "limit=3" in page["next"]
    rest = client.get("/api/interactions?limit=1000000&offset=3").json()
    assert len(rest["results"]) == 2 and rest["next"] is None
    assert client.get(page["next"]).json()["results"] == rest["results"]
    assert len(client.get("/api/interactions?limit=2").json()["results"]) == 2  # below: kept
    seen = {i["id"] for i in page["results"]} | {i["id"] for i in rest["results"]}
    assert len(seen) == 5


def test_the_schema_states_the_maximum(api_client, staff_user, settings):
    settings.ATTUNE_MAX_PAGE_SIZE = 77
    api_client.force_authenticate(staff_user)
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    limit = next(
        p for p in schema["paths"]["/api/interactions"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert "at most 77" in limit["description"]


# --- throttles


def test_the_user_throttle_answers_429_with_retry_after(client_for, user, other_user, settings):
    settings.ATTUNE_THROTTLE_USER = "3/min"
    client = client_for(user)
    assert [client.get("/api/me").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/api/me")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "throttled" in refused.json()["detail"]
    assert client_for(other_user).get("/api/me").status_code == 200  # per user


def test_throttle_counters_live_in_redis_when_configured(client_for, user, settings):
    import redis

    prefix = f"attune-test-{secrets.token_hex(4)}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
        }
    }
    settings.ATTUNE_THROTTLE_USER = "2/min"
    client = client_for(user)
    assert [client.get("/api/me").status_code for _ in range(3)] == [200, 200, 429]
    server = redis.Redis.from_url(REDIS_URL)
    keys = server.keys(f"{prefix}:*throttle_user_{user.pk}")
    assert len(keys) == 1  # where every web process looks
    server.delete(*keys)


def test_the_app_throttle_counts_all_its_end_users(api_client, user, settings):
    settings.ATTUNE_THROTTLE_APP = "4/min"
    key = services.create_client_app(user, "shop").key
    codes = [
        api_client.get("/api/me", HTTP_X_ATTUNE_USER=f"customer-{i}", **bearer(key)).status_code
        for i in range(5)
    ]
    assert codes == [200, 200, 200, 200, 429]
    other_app = services.create_client_app(user, "blog").key
    assert api_client.get("/api/me", HTTP_X_ATTUNE_USER="x", **bearer(other_app)).status_code == 200


def test_v1_throttles_answer_in_openais_shape(client_for, user, settings):
    settings.ATTUNE_THROTTLE_USER = "2/min"
    client = client_for(user)
    assert [client.get("/v1/models").status_code for _ in range(2)] == [200, 200]
    assert_openai_rate_limit(client.get("/v1/models"))


def test_generation_has_its_own_stricter_rate(client_for, user, settings):
    settings.ATTUNE_THROTTLE_GENERATION_USER = "2/min"
    client = client_for(user)
    answers = [client.post("/v1/chat/completions", CHAT, format="json") for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [404, 404]  # counted, then refused
    assert_openai_rate_limit(answers[2])
    assert client.get("/v1/models").status_code == 200  # the rest of the API is not limited


# --- guessed keys


def test_wrong_keys_from_one_address_answer_429_but_never_lock_out_a_valid_key(
    api_client, user, settings
):
    settings.ATTUNE_THROTTLE_AUTH_FAILURES = "3/min"
    guesses = [api_client.get("/api/me", **bearer(f"atk_guess{i}")).status_code for i in range(3)]
    assert guesses == [401, 401, 401]
    for key in ("atk_guess3", "apk_guess4", "nonsense"):
        refused = api_client.get("/api/me", **bearer(key))
        assert refused.status_code == 429, key
        assert int(refused["Retry-After"]) >= 1
        assert "Too many wrong API keys" in refused.json()["detail"]

    real = services.issue_personal_token(user, "laptop").key
    assert api_client.get("/api/me", **bearer(real)).status_code == 200  # same address
    assert api_client.get("/api/me", **bearer("atk_x", "10.0.0.9")).status_code == 401  # other


def test_wrong_keys_on_v1_get_openais_rate_limit_error(api_client, settings):
    settings.ATTUNE_THROTTLE_AUTH_FAILURES = "1/min"
    first = api_client.post("/v1/chat/completions", CHAT, format="json", **bearer("atk_a"))
    assert first.status_code == 401 and first.json()["error"]["code"] == "invalid_api_key"
    second = api_client.post("/v1/chat/completions", CHAT, format="json", **bearer("atk_b"))
    assert_openai_rate_limit(second)
