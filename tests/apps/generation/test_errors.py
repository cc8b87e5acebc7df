"""Bad requests answer OpenAI-style JSON errors with the right status, never a 500."""

from __future__ import annotations

import pytest

from apps.feedback.models import Interaction

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = [{"role": "user", "content": "The council met on Monday."}]


def chat(client, body, **kwargs):
    return client.post("/v1/chat/completions", body, format="json", **kwargs)


def assert_error(answer, status: int, param: str | None = None, code: str | None = None) -> dict:
    assert answer.status_code == status, answer.content
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        ({"model": "gpt-9", "messages": MESSAGES}, 404, "model", "model_not_found"),
        ({"messages": MESSAGES}, 400, "model", "missing_required"),
        ({"model": "attune"}, 400, "messages", "invalid_type"),
        ({"model": "attune", "messages": []}, 400, "messages", "invalid_type"),
        ({"model": "attune", "messages": [{"role": "robot", "content": "x"}]}, 400,
         "messages[0].role", "invalid_value"),
        ({"model": "attune", "messages": [{"role": "user", "content": 5}]}, 400,
         "messages[0].content", "invalid_type"),
        ({"model": "attune", "messages": [{"role": "system", "content": "x"}]}, 400, "messages",
         "invalid_value"),
        ({"model": "attune", "messages": [{"role": "user", "content": "a\x00b"}]}, 400,
         "messages[0].content", "invalid_value"),
        ({"model": "attune", "messages": MESSAGES, "temperature": 3}, 400, "temperature",
         "invalid_value"),
        ({"model": "attune", "messages": MESSAGES, "temperature": "hot"}, 400, "temperature",
         "invalid_type"),
        ({"model": "attune", "messages": MESSAGES, "top_p": 1.5}, 400, "top_p", "invalid_value"),
        ({"model": "attune", "messages": MESSAGES, "n": 0}, 400, "n", "invalid_value"),
        ({"model": "attune", "messages": MESSAGES, "n": 99}, 400, "n", "invalid_value"),
        ({"model": "attune", "messages": MESSAGES, "max_tokens": 0}, 400, "max_tokens",
         "invalid_value"),
        ({"model": "attune", "messages": MESSAGES, "max_tokens": True}, 400, "max_tokens",
         "invalid_type"),
        ({"model": "attune", "messages": MESSAGES, "stop": ["a", "b", "c", "d", "e"]}, 400,
         "stop", "invalid_value"),
        ({"model": "attune", "messages": MESSAGES, "stream": "yes"}, 400, "stream",
         "invalid_type"),
        ({"model": "attune", "messages": MESSAGES, "logprobs": True}, 400, "logprobs",
         "unsupported_value"),
        ({"model": "attune", "messages": MESSAGES, "frobnicate": 1}, 400, "frobnicate",
         "unknown_parameter"),
        (["not", "an", "object"], 400, None, "invalid_json"),
    ],
)  # fmt: skip
def test_bad_parameters(client_for, user, body, status, param, code, settings):
    settings.ATTUNE_SERVING_URL = "http://127.0.0.1:1"  # refused before reaching the service
    assert_error(chat(client_for(user), body), status, param, code)
    assert not Interaction.objects.exists()


def test_malformed_json_and_wrong_content_type(client_for, user):
    client = client_for(user)
    answer = client.post("/v1/chat/completions", "{not json", content_type="application/json")
    assert_error(answer, 400, code="invalid_json")
    answer = client.post("/v1/chat/completions", {"model": "attune"}, format="multipart")
    assert_error(answer, 400, code="invalid_content_type")


def test_a_body_over_the_limit_is_an_openai_413(client_for, user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"model": "attune", "messages": [{"role": "user", "content": "x" * 2000}]}
    assert_error(chat(client_for(user), body), 413, code="request_too_large")
    answer = client_for(user).post("/api/ratings", {"comment": "x" * 2000}, format="json")
    assert answer.status_code == 413 and "limit" in answer.json()["detail"]


def test_missing_and_bad_keys_are_401(api_client, client_for, user):
    body = {"model": "attune", "messages": MESSAGES}
    error = assert_error(chat(api_client, body), 401, code="missing_api_key")
    assert "API key" in error["message"]
    api_client.credentials(HTTP_AUTHORIZATION="Bearer atk_nope")
    assert_error(chat(api_client, body), 401, code="invalid_api_key")
    assert_error(api_client.get("/v1/models"), 401, code="invalid_api_key")


def test_over_long_input(client_for, user, generation, settings):
    client = client_for(user)
    long_text = " ".join(["council"] * 3000)  # under the character limit, over 512 tokens
    answer = chat(client, {"model": "attune", "messages": [{"role": "user", "content": long_text}]})
    error = assert_error(answer, 400, "messages", "context_length_exceeded")
    assert "512" in error["message"]
    answer = chat(client, {"model": "attune", "messages": MESSAGES, "max_tokens": 600})
    assert_error(answer, 400, "messages", "context_length_exceeded")
    settings.ATTUNE_MAX_PROMPT_CHARS = 100
    answer = chat(client, {"model": "attune", "messages": [{"role": "user", "content": "x" * 101}]})
    assert_error(answer, 400, "messages", "context_length_exceeded")
    answer = chat(client, {"model": "attune", "messages": MESSAGES, "stream": True})
    assert answer.status_code == 200  # a good request still works after the refusals
    assert not Interaction.objects.filter(output__contains="council council").exists()


def test_a_long_paragraph_is_cut_after_a_sentence_not_refused(client_for, user, generation):
    text = " ".join(f"The council met on day {i} and approved plan {i}." for i in range(80))
    messages = [{"role": "user", "content": text}]
    answer = chat(client_for(user), {"model": "attune", "messages": messages, "max_tokens": 8})
    assert answer.status_code == 200, answer.content
    cut = answer.json()["attune"]["context_cut"]
    assert cut["total_sentences"] == 80 and 1 < cut["kept_sentences"] < 80
    assert f"after sentence {cut['kept_sentences']} of 80" in cut["message"]
    seen = Interaction.objects.get(pk=answer.json()["choices"][0]["interaction_id"]).messages
    assert seen[0]["content"].endswith(f"plan {cut['kept_sentences'] - 1}.")  # what it read
    whole = chat(client_for(user), {"model": "attune", "messages": MESSAGES, "max_tokens": 8})
    assert whole.json()["attune"]["context_cut"] is None


def test_serving_process_down_is_503(client_for, user, settings):
    settings.ATTUNE_SERVING_URL = "http://127.0.0.1:1"
    answer = chat(client_for(user), {"model": "attune", "messages": MESSAGES})
    error = assert_error(answer, 503, code="serving_unavailable")
    assert "./attune run" in error["message"]
    assert answer["Retry-After"] == "5"  # clients (the openai one does) retry after it


def test_serving_key_is_required(client_for, user, generation, settings):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        generation.url + "/internal/generate", data=b"{}", method="POST",
        headers={"Authorization": "Bearer wrong"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 401
    settings.ATTUNE_SERVING_KEY = "not-the-serving-key"
    answer = chat(client_for(user), {"model": "attune", "messages": MESSAGES})
    assert_error(answer, 503, code="serving_misconfigured")


def test_models_are_listed(client_for, user):
    client = client_for(user)
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["attune", "attune-base"]
    assert client.get("/v1/models/attune").json()["id"] == "attune"
    assert_error(client.get("/v1/models/gpt-9"), 404, "model", "model_not_found")
    assert_error(client.post("/v1/models", {}, format="json"), 405)


def test_endpoints_are_in_the_openapi_schema(client_for, user):
    schema = client_for(user).get("/api/schema/?format=json").json()
    operation = schema["paths"]["/v1/chat/completions"]["post"]
    assert operation["operationId"] == "create_chat_completion"
    assert "examples" in operation["requestBody"]["content"]["application/json"]
    assert {"/v1/models", "/v1/models/{model}"} <= set(schema["paths"])


def test_the_database_failing_mid_request_is_a_503_with_retry_after(client_for, user, monkeypatch):
    from django.db import OperationalError

    from apps.generation import services

    def database_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    client = client_for(user)  # authenticated while the database answered; then it goes
    monkeypatch.setattr(services, "generate", database_gone)
    answer = chat(client, {"model": "attune", "messages": MESSAGES})
    error = assert_error(answer, 503, code="database_unavailable")
    assert error["type"] == "service_unavailable_error" and int(answer["Retry-After"]) > 0
