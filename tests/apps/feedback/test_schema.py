"""Every feedback, persona, export and my-data endpoint is in the OpenAPI schema, with examples."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

PATHS = {
    "/api/interactions": {"get", "post"},
    "/api/interactions/{id}": {"get", "delete"},
    "/api/ratings": {"get", "post"},
    "/api/ratings/{id}": {"get", "patch", "delete"},
    "/api/edits": {"get", "post"},
    "/api/edits/{id}": {"get", "delete"},
    "/api/comparisons": {"get", "post"},
    "/api/comparisons/{id}": {"get", "patch", "delete"},
    "/api/export/dpo": {"get"},
    "/api/export/kto": {"get"},
    "/api/persona": {"get", "put", "patch", "delete"},
    "/api/personas": {"get"},
    "/api/personas/{id}": {"get"},
    "/api/my-data": {"get", "delete"},
}


def examples_of(operation: dict) -> list:
    found = []
    bodies = [operation.get("requestBody", {}), *operation.get("responses", {}).values()]
    for body in bodies:
        for media in body.get("content", {}).values():
            found += list(media.get("examples", {}).values())
    return found


def test_every_endpoint_is_documented_with_examples(client_for, user):
    schema = client_for(user).get("/api/schema/?format=json").json()
    for path, methods in PATHS.items():
        assert path in schema["paths"], path
        operations = schema["paths"][path]
        assert set(operations) - {"parameters"} == methods, path
        for method in methods:
            assert examples_of(operations[method]), f"{method.upper()} {path} has no example"
    assert schema["components"]["securitySchemes"]["bearerKey"]["scheme"] == "bearer"


def test_list_endpoints_document_their_filters(client_for, user):
    schema = client_for(user).get("/api/schema/?format=json").json()
    for path in ("/api/interactions", "/api/ratings", "/api/edits", "/api/comparisons"):
        names = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
        assert {"created_after", "created_before", "source", "user_id", "limit", "offset"} <= names
    export = {p["name"] for p in schema["paths"]["/api/export/dpo"]["get"]["parameters"]}
    assert {"all", "user_id", "source", "created_after", "created_before"} <= export
