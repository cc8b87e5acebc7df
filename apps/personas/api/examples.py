"""Example requests and answers for the persona endpoints' OpenAPI schema."""

from __future__ import annotations

from apps.common.schema import MALFORMED, example

PERSONA_IN = {
    "text": "I teach primary school and write newsletters for parents.",
    "attributes": {"role": "teacher", "tone": "warm", "languages": ["en", "nl"]},
}
PERSONA_OUT = {
    "id": 4,
    "user": 3,
    **PERSONA_IN,
    "created_at": "2026-05-01T09:30:00Z",
    "updated_at": "2026-05-02T10:00:00Z",
    "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
    "embedding_dim": 384,
    "embedded_at": "2026-05-02T10:00:01Z",
}
PERSONA = [
    example("persona", PERSONA_IN, request_only=True),
    example("persona", PERSONA_OUT, response_only=True),
]
PERSONA_UPDATE = [example("new tone", {"attributes": {"tone": "playful"}}, request_only=True)]
NO_PERSONA = {"none": {"detail": "You have no persona yet."}}
ERRORS = {
    "not_an_object": {"attributes": ["Expected a JSON object."]},
    "too_long": {"text": ["Ensure this field has no more than 8000 characters."]},
    **MALFORMED,
}
