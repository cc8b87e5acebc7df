"""The my-data download as an HTTP answer, shared by the API (``GET /api/my-data``) and the web
page (``/my-data/export``)."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils import timezone

from apps.accounts.models import User
from apps.common.streaming import jsonl_attachment
from apps.privacy.selectors import user_data_jsonl


def export_response(user: User) -> StreamingHttpResponse:
    """Everything ``user`` owns, streamed as a JSON Lines attachment."""
    filename = f"attune-my-data-{user.pk}-{timezone.now():%Y%m%dT%H%M%S}.jsonl"
    return jsonl_attachment(user_data_jsonl(user), filename)
