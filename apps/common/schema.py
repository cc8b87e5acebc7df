"""OpenAPI helpers: the error answers every endpoint shares, documented with examples."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from apps.common.streaming import JSONL_MEDIA_TYPE


class BearerKeyScheme(OpenApiAuthenticationExtension):
    """Documents ``Authorization: Bearer <key>`` (personal tokens and app keys) in the schema."""

    target_class = "apps.accounts.authentication.BearerKeyAuthentication"
    name = "bearerKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal token (atk_…), or an app key (apk_…) with the end user "
            "named by the X-Attune-User header.",
        }


def error(description: str, **examples: dict[str, Any]) -> OpenApiResponse:
    """An error answer (a JSON object) with one named example per keyword."""
    return OpenApiResponse(
        OpenApiTypes.OBJECT,
        description=description,
        examples=[OpenApiExample(name, value=value) for name, value in examples.items()],
    )


NOT_FOUND = error(
    "Not found: no such object, or it is another user's.",
    not_found={"detail": "No object matches the given query."},
)
STAFF_ONLY = error(
    "Staff only.",
    forbidden={"detail": "You do not have permission to perform this action."},
)
TOO_LARGE = error(
    "The request body is over ATTUNE_MAX_BODY_BYTES.",
    too_large={"detail": "Request body is 2000000 bytes; the limit is 1048576 bytes."},
)
MALFORMED = {"malformed_json": {"detail": "JSON parse error - Expecting value: line 1 column 9"}}


def example(name: str, value: Any, **kwargs: Any) -> OpenApiExample:
    """A named example value (``request_only`` / ``response_only`` as keywords)."""
    return OpenApiExample(name, value=value, **kwargs)


API_ERROR = {
    "type": "object",
    "description": 'DRF\'s error: {"detail": "…"}, or the invalid fields with their messages.',
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
OPENAI_ERROR = {
    "type": "object",
    "description": "OpenAI's error shape.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": "string", "nullable": True},
                "code": {"type": "string", "nullable": True},
            },
        }
    },
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    },
}
# status -> (description, for every operation? else only those with parameters or a body)
COMMON_ERRORS: dict[str, tuple[str, bool]] = {
    "400": ("Invalid input: the fields (or parameters) at fault, with their messages.", False),
    "401": ("No valid API key (personal token or app key).", True),
    "403": ("Not allowed for this caller (staff only, or an app key's end user).", True),
    "404": ("Not found: no such object, another user's, or an unknown `format`.", True),
    "413": ("The request body is over ATTUNE_MAX_BODY_BYTES.", False),
    "415": ("The request body's Content-Type is not one this endpoint reads.", False),
    "429": ("Too many requests: wait for Retry-After seconds.", True),
    "503": ("The database (or, for /v1, serving) is down: retry after Retry-After.", True),
}


def document_common_errors(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular post-processing hook: every operation documents the errors any request
    can get (auth, permissions, throttling, a missing object, bad input, a body over the limit,
    the database down), in its API's shape, unless it documents that status itself.

    So clients (and the schema-conformance fuzz test) can rely on the schema for every answer,
    without each view repeating them.
    """
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("APIError", API_ERROR)
    schemas.setdefault("OpenAIError", OPENAI_ERROR)
    for path, operations in result.get("paths", {}).items():
        shape = {
            "$ref": "#/components/schemas/"
            + ("OpenAIError" if path.startswith("/v1/") else "APIError")
        }
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            has_input = "requestBody" in operation or any(
                p.get("in") == "query" for p in operation.get("parameters", [])
            )
            responses = operation.setdefault("responses", {})
            content = {
                media_type: {"schema": shape} for media_type in _error_media_types(responses)
            }
            for status, (description, always) in COMMON_ERRORS.items():
                if status in responses or not (always or has_input):
                    continue
                if status in {"413", "415"} and "requestBody" not in operation:
                    continue
                answer: dict[str, Any] = {"description": description, "content": content}
                if status in {"429", "503"}:
                    answer["headers"] = RETRY_AFTER
                responses[status] = answer
    return result


def _error_media_types(responses: dict[str, Any]) -> list[str]:
    """JSON, and JSON Lines where a success is JSON Lines (``?format=jsonl`` errors are too)."""
    given = {
        media_type
        for status, response in responses.items()
        if status.startswith("2")
        for media_type in response.get("content", {})
    }
    return ["application/json", *sorted(given & {JSONL_MEDIA_TYPE})]
