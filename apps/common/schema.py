"""OpenAPI helpers: the error answers every endpoint shares, documented with examples."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse


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
