"""Example answers for the my-data endpoints' OpenAPI schema."""

from __future__ import annotations

from apps.common.schema import example

EXPORT_JSONL = (
    '{"model": "accounts.user", "fields": {"id": 3, "username": "demo", "email": "", '
    '"external_id": "", "client_app_id": null, "date_joined": "2026-05-01T09:00:00Z"}}\n'
    '{"model": "feedback.interaction", "fields": {"id": 12, "user_id": 3, "prompt": "…", '
    '"output": "…", "source": "news", "created_at": "2026-05-01T09:30:00Z"}}\n'
    '{"model": "feedback.rating", "fields": {"id": 7, "user_id": 3, "interaction_id": 12, '
    '"thumbs_up": null, "stars": 4, "comment": ""}}\n'
)
EXPORT = [example("records", EXPORT_JSONL)]
NO_USER = {"none": {"detail": "Not found."}}
ERASED = [
    example(
        "deleted",
        {"deleted": {"feedback.Edit": 2, "feedback.Interaction": 12, "feedback.Rating": 9}},
        response_only=True,
    )
]
