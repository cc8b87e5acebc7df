"""TRL-ready exports, streamed as JSON Lines: DPO pairs and KTO examples.

By default a caller exports their own feedback. ``?all=1`` widens that to everything the caller
may read (staff: every user), and ``?user_id=ID`` picks one user within it. The same filters as the
lists apply: ``created_after``, ``created_before``, ``source``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.accounts.models import User
from apps.audit import services as audit
from apps.audit.models import AuditEntry
from apps.common.api import validated
from apps.common.schema import error, example
from apps.common.streaming import JSONL_MEDIA_TYPE, JSONLinesRenderer, jsonl_attachment
from apps.feedback import trl_export
from apps.feedback.api import examples as ex
from apps.feedback.api import filters
from apps.feedback.models import Comparison, Edit, Rating


class ExportQuery(serializers.Serializer):
    all = serializers.BooleanField(default=False)


PARAMETERS = [
    OpenApiParameter("all", bool, description="Everything you may read (staff: every user)."),
    OpenApiParameter("user_id", int, description="One user's data (staff; others: only theirs)."),
    OpenApiParameter("source", str, description="Context source, e.g. news."),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="From this time on."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Before this time."),
]
BAD_QUERY = error("A query parameter is invalid (named).", **ex.BAD_FILTER)


class _ExportView(APIView):
    renderer_classes = [JSONRenderer, JSONLinesRenderer]
    name: str

    def scoped(self, model: type, filterset: type, errors: dict[str, Any]) -> QuerySet:
        """``model``'s rows in the requested scope, filtered; filter errors go into ``errors``."""
        query = validated(ExportQuery, self.request.query_params)
        user = self.request.user
        wide = query.validated_data["all"] or "user_id" in self.request.query_params
        base = model.objects.visible_to(user) if wide else model.objects.owned_by(user)
        found = filterset(self.request.query_params, queryset=base)
        if not found.is_valid():
            errors.update(found.errors)
        return found.qs

    def audit_staff_export(self) -> None:
        """Staff exporting beyond their own feedback: one audit row (whose: the named user, or
        every user's)."""
        user, params = self.request.user, self.request.query_params
        if not user.is_staff:
            return  # others only ever read their own
        everything = validated(ExportQuery, params).validated_data["all"]
        named = int(params["user_id"]) if params.get("user_id") else None  # the filter checked it
        if named == user.pk or (named is None and not everything):
            return
        target = User.objects.filter(pk=named).first() if named is not None else None
        if named is not None and target is None:
            return  # nobody's data
        whose = target.get_username() if target is not None else "every user"
        audit.record(user, AuditEntry.Action.EXPORT_FEEDBACK, target,
                     summary=f"exported {whose}'s {self.name.upper()} feedback")  # fmt: skip

    def filename(self) -> str:
        return f"attune-{self.name}-{self.request.user.pk}-{timezone.now():%Y%m%dT%H%M%S}.jsonl"


def _export_schema(summary: str, description: str, jsonl: str) -> Any:
    return extend_schema(
        tags=["export"],
        summary=summary,
        description=description,
        parameters=PARAMETERS,
        responses={
            (200, JSONL_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.STR,
                description="JSON Lines, one example per line.",
                examples=[example("rows", jsonl)],
            ),
            400: BAD_QUERY,
        },
    )


class DPOExportView(_ExportView):
    name = "dpo"

    @_export_schema(
        "Export DPO pairs (JSONL)",
        "Rows `{prompt, chosen, rejected}` for TRL's DPOTrainer: from edits (edited is chosen, "
        "original rejected; no-op edits left out) and comparisons (ties and comparisons of two "
        "identical texts left out), in id order.",
        ex.DPO_JSONL,
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        errors: dict[str, Any] = {}
        edits = self.scoped(Edit, filters.EditFilter, errors)
        comparisons = self.scoped(Comparison, filters.ComparisonFilter, errors)
        if errors:
            raise serializers.ValidationError(errors)
        self.audit_staff_export()
        return jsonl_attachment(trl_export.dpo_jsonl(edits, comparisons), self.filename())


class KTOExportView(_ExportView):
    name = "kto"

    @_export_schema(
        "Export KTO examples (JSONL)",
        "Rows `{prompt, completion, label}` for TRL's KTOTrainer, from ratings: thumbs up or 4-5 "
        "stars is `true`, thumbs down or 1-2 stars `false`; 3 stars is left out.",
        ex.KTO_JSONL,
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        errors: dict[str, Any] = {}
        ratings = self.scoped(Rating, filters.RatingFilter, errors)
        if errors:
            raise serializers.ValidationError(errors)
        self.audit_staff_export()
        return jsonl_attachment(trl_export.kto_jsonl(ratings), self.filename())
