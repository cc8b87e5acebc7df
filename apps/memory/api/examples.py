"""Example requests and answers for the memory endpoints' OpenAPI schema."""

from __future__ import annotations

from apps.common.schema import MALFORMED, example

WHEN = "2026-05-01T09:30:00Z"
CONTEXT = "Summarize for the newsletter: Ghent's council voted on Monday to extend the tram line."
INFERRED_OUT = {
    "id": 41,
    "user": 3,
    "preference": "brief, casual, ends with a question",
    "context_text": CONTEXT,
    "source": "news",
    "origin": "inferred",
    "edit": 17,
    "superseded_by": None,
    "superseded_at": None,
    "created_at": WHEN,
    "updated_at": WHEN,
    "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
    "embedding_dim": 384,
    "embedded_at": WHEN,
}
WRITTEN_IN = {
    "preference": "bullet points, no emojis",
    "context_text": "Meeting notes of the platform team: decisions, owners, deadlines.",
    "source": "meeting",
}
WRITTEN_OUT = {
    **INFERRED_OUT,
    "id": 42,
    **WRITTEN_IN,
    "origin": "user",
    "edit": None,
    "embedding_model": "",
    "embedding_dim": None,
    "embedded_at": None,
}
CREATE = [
    example("for a context text", WRITTEN_IN, request_only=True),
    example(
        "for an interaction's prompt",
        {"preference": "formal, detailed", "interaction": 12},
        request_only=True,
    ),
    example("written by the user", WRITTEN_OUT, response_only=True),
]
UPDATE = [
    example("correct the phrase", {"preference": "brief, casual, no emojis"}, request_only=True),
    example(
        "corrected (now the user's own)",
        {**INFERRED_OUT, "preference": "brief, casual, no emojis", "origin": "user"},
        response_only=True,
    ),
]
REPLACED = {
    **INFERRED_OUT,
    "preference": "brief, bullet points",
    "superseded_by": 58,
    "superseded_at": "2026-06-02T14:05:00Z",
}
ENTRY = [
    example("learned from an edit", INFERRED_OUT, response_only=True),
    example("replaced by a newer preference", REPLACED, response_only=True),
]
RESTORED = [
    example(
        "active again",
        {**REPLACED, "superseded_by": None, "superseded_at": None},
        response_only=True,
    )
]
NOT_REPLACED = {
    "not_replaced": {"superseded_by": ["Entry 41 was not replaced by a newer one: it is active."]}
}
ERRORS = {
    "too_long": {"preference": ["Ensure this field has no more than 500 characters."]},
    "no_context": {"context_text": ["Give the context (context_text) or an interaction."]},
    **MALFORMED,
}
UNKNOWN_INTERACTION = {"unknown_interaction": {"interaction": ["You have no interaction 999."]}}
