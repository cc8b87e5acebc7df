"""API building blocks shared by every app: owner-scoped viewsets, validated input, JSON parsing,
and the one place where errors become HTTP answers (:func:`exception_handler`)."""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from rest_framework import exceptions, parsers, permissions, status
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from apps.common.fields import printable
from core.errors import AttuneError, Conflict, InvalidValue, NotEnoughData, ReferenceNotFound

S = TypeVar("S", bound=BaseSerializer)


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


def validated(serializer_class: type[S], data: Any, **kwargs: Any) -> S:
    """``serializer_class`` holding ``data`` (a body or query parameters), validated: a 400
    naming the fields if not. ``kwargs`` go to the serializer (``instance``, ``partial``)."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering 400 (not 500) for JSON nested too deep to decode."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as err:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from err


def domain_error_response(exc: AttuneError) -> Response:
    """The HTTP answer to a domain error of :mod:`core.errors` (the only place that maps them)."""
    if isinstance(exc, NotEnoughData):
        body: dict[str, Any] = {
            "detail": exc.message,
            "needed": exc.needed,
            "available": exc.available,
        }
        if exc.what is not None:
            body["what"] = exc.what
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, Conflict):
        return Response({"detail": exc.message}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ReferenceNotFound):
        return Response({exc.field: [exc.message]}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, InvalidValue):
        return Response({exc.field: exc.messages}, status=status.HTTP_400_BAD_REQUEST)
    return Response({"detail": exc.message}, status=status.HTTP_400_BAD_REQUEST)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus a JSON 413 for bodies over the limit and the domain errors of
    :mod:`core.errors` (409 not enough data or conflict, 404 unknown reference, 400 invalid
    value); views never answer those by hand. Anything else unexpected is left to
    :class:`apps.common.middleware.APIErrorMiddleware` (a logged JSON 500, or 503 while the
    database is down)."""
    # DRF's views module reads the API settings, which name this module: import it late.
    from rest_framework.views import exception_handler as drf_exception_handler
    from rest_framework.views import set_rollback

    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "Request body exceeds the size limit."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, AttuneError):
        set_rollback()
        response = domain_error_response(exc)
    else:
        response = drf_exception_handler(exc, context)
    if response is not None:  # messages may echo the input
        response.data = printable(response.data)
    return response
