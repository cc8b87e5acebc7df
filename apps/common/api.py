"""API building blocks shared by every app: owner-scoped viewsets and the error format."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


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


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus a JSON 413 for bodies over the limit."""
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "Request body exceeds the size limit."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return drf_exception_handler(exc, context)
