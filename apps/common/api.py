"""API building blocks shared by every app: owner-scoped viewsets, JSON parsing, error format."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from rest_framework import exceptions, parsers, permissions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.common.errors import ReferenceNotFound


class OwnedViewSetMixin:
    """Scope a viewset to the caller: reads see their own rows (staff: all), writes only their own.

    The view's ``queryset`` must come from an :class:`apps.common.models.OwnedModel`; objects
    outside the scope answer 404, never 403, so their existence is not revealed.
    """

    request: Any

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()  # type: ignore[misc]
        user = self.request.user
        if self.request.method in permissions.SAFE_METHODS:
            return queryset.visible_to(user)
        return queryset.owned_by(user)

    def perform_create(self, serializer: Any) -> None:
        serializer.save(user=self.request.user)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering 400 (not 500) for JSON nested too deep to decode."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as err:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from err


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus a JSON 413 for bodies over the limit and 404 for unknown references."""
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "Request body exceeds the size limit."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, ReferenceNotFound):
        return Response({exc.field: [exc.message]}, status=status.HTTP_404_NOT_FOUND)
    return drf_exception_handler(exc, context)
