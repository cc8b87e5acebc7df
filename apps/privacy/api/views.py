"""``/api/my-data``: download everything Attune holds about you (JSONL), or delete all of it.

Staff may download another user's (``?user_id=``); the audit log records it."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import User
from apps.audit import services as audit
from apps.audit.models import AuditEntry
from apps.common.api import validated
from apps.common.schema import error
from apps.common.streaming import JSONL_MEDIA_TYPE, JSONLinesRenderer
from apps.privacy import services
from apps.privacy.api import examples as ex
from apps.privacy.api import serializers as s
from apps.privacy.responses import export_response


@extend_schema(tags=["privacy"])
class MyDataView(APIView):
    """Everything the caller owns, across all apps: export it, or erase it."""

    renderer_classes = [JSONRenderer, JSONLinesRenderer]

    @extend_schema(
        summary="Export all my data (JSONL)",
        description="Your account facts, then every row you own (interactions, ratings, edits, "
        "comparisons, persona, and what later apps store), one JSON object per line, model by "
        "model and by id within one; embedding vectors are left out. Staff may name another "
        "user with `?user_id=ID`.",
        parameters=[OpenApiParameter("user_id", int, description="Staff: this user's data.")],
        responses={
            (200, JSONL_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.STR, examples=ex.EXPORT),
            404: error("No such user (staff), or not yours to read.", **ex.NO_USER),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        query = validated(s.ExportQuery, request.query_params)
        user = request.user
        wanted = query.validated_data.get("user_id", user.pk)
        if wanted != user.pk:
            if not (user.is_staff and user.is_active):
                raise NotFound()
            user = User.objects.filter(pk=wanted).first()
            if user is None:
                raise NotFound()
            audit.record(
                request.user,
                AuditEntry.Action.EXPORT_USER_DATA,
                user,
                summary=f"exported all of {user.get_username()}'s data (GET /api/my-data)",
            )
        return export_response(user)

    @extend_schema(
        summary="Delete all my data (hard delete)",
        description="Deletes every row you own in every app, embeddings and derived data "
        "included. Your account and API keys stay. Export first if you want a copy. The "
        "deletion runs in short batches; should it stop part-way (an error answer), what is "
        "left is consistent and calling it again finishes the job.",
        responses={200: s.ErasedSerializer},
        examples=ex.ERASED,
    )
    def delete(self, request: Request) -> Response:
        return Response({"deleted": services.erase_user_data(request.user)})
