"""``/api/my-data``: download everything Attune holds about you (JSONL), or delete all of it."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import User
from apps.common.fields import object_id
from apps.common.schema import error, example
from apps.common.streaming import JSONL_MEDIA_TYPE, JSONLinesRenderer, jsonl_response
from apps.privacy import selectors, services

EXPORT_EXAMPLE = (
    '{"model": "accounts.user", "fields": {"id": 3, "username": "demo", "email": "", '
    '"external_id": "", "client_app_id": null, "date_joined": "2026-05-01T09:00:00Z"}}\n'
    '{"model": "feedback.interaction", "fields": {"id": 12, "user_id": 3, "prompt": "…", '
    '"output": "…", "source": "news", "created_at": "2026-05-01T09:30:00Z"}}\n'
    '{"model": "feedback.rating", "fields": {"id": 7, "user_id": 3, "interaction_id": 12, '
    '"thumbs_up": null, "stars": 4, "comment": ""}}\n'
)
ERASED_EXAMPLE = {
    "deleted": {"feedback.Edit": 2, "feedback.Interaction": 12, "feedback.Rating": 9},
}


class ExportQuery(serializers.Serializer):
    user_id = object_id(required=False)


class ErasedSerializer(serializers.Serializer):
    deleted = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rows deleted per model (cascades included)."
    )


@extend_schema(tags=["privacy"])
class MyDataView(APIView):
    """Everything the caller owns, across all apps: export it, or erase it."""

    renderer_classes = [JSONRenderer, JSONLinesRenderer]

    @extend_schema(
        summary="Export all my data (JSONL)",
        description="Your account facts, then every row you own (interactions, ratings, edits, "
        "comparisons, persona, and what later apps store), one JSON object per line; embedding "
        "vectors are left out. Staff may name another user with `?user_id=ID`.",
        parameters=[OpenApiParameter("user_id", int, description="Staff: this user's data.")],
        responses={
            (200, JSONL_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.STR, examples=[example("records", EXPORT_EXAMPLE)]
            ),
            404: error(
                "No such user (staff), or not yours to read.", none={"detail": "Not found."}
            ),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        query = ExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        user = request.user
        wanted = query.validated_data.get("user_id", user.pk)
        if wanted != user.pk:
            if not (user.is_staff and user.is_active):
                raise NotFound()
            user = User.objects.filter(pk=wanted).first()
            if user is None:
                raise NotFound()
        filename = f"attune-my-data-{user.pk}-{timezone.now():%Y%m%dT%H%M%S}.jsonl"
        return jsonl_response(selectors.user_data_records(user), filename)

    @extend_schema(
        summary="Delete all my data (hard delete)",
        description="Deletes every row you own in every app, embeddings and derived data "
        "included. Your account and API keys stay. Export first if you want a copy.",
        responses={200: ErasedSerializer},
        examples=[example("deleted", ERASED_EXAMPLE, response_only=True)],
    )
    def delete(self, request: Request) -> Response:
        return Response({"deleted": services.erase_user_data(request.user)})
