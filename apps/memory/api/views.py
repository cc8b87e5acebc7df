"""``/api/memory``: the caller's learned preferences, to read, correct, add, delete and restore.

Views validate with serializers and write through ``apps.memory.services``. Reads are scoped by
:class:`apps.common.api.OwnedViewSetMixin` (staff read everyone's); another user's entry answers
404. An inference in progress shows up here once the worker has stored it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.common.api import OwnedViewSetMixin, validated
from apps.common.schema import NOT_FOUND, TOO_LARGE, error
from apps.memory import services
from apps.memory.api import examples as ex
from apps.memory.api import filters
from apps.memory.api import serializers as s
from apps.memory.models import MemoryEntry

INVALID = error("Invalid input, naming the field.", **ex.ERRORS)


@extend_schema_view(
    list=extend_schema(
        summary="List my learned preferences",
        description="Replaced ones included (`superseded_by` set; `?superseded=false` leaves "
        "them out).",
        examples=ex.ENTRY,
    ),
    retrieve=extend_schema(
        summary="Read one learned preference",
        examples=ex.ENTRY,
        responses={200: s.MemoryEntrySerializer, 404: NOT_FOUND},
    ),
    create=extend_schema(
        summary="Add a preference of my own",
        description="It outranks learned ones for similar contexts (cosine distance up to "
        "ATTUNE_MEMORY_PRECEDENCE_DISTANCE). Give the context as text or as an interaction.",
        request=s.MemoryEntryCreateSerializer,
        examples=ex.CREATE,
        responses={
            201: s.MemoryEntrySerializer,
            400: INVALID,
            404: error("The interaction is unknown or another user's.", **ex.UNKNOWN_INTERACTION),
            413: TOO_LARGE,
        },
    ),
    partial_update=extend_schema(
        summary="Correct a learned preference",
        description="A new preference text becomes the user's own (origin `user`).",
        request=s.MemoryEntryUpdateSerializer,
        examples=ex.UPDATE,
        responses={200: s.MemoryEntrySerializer, 400: INVALID, 404: NOT_FOUND},
    ),
    destroy=extend_schema(
        summary="Forget a learned preference (hard delete)",
        description="The entries it replaced are active again.",
        responses={204: None, 404: NOT_FOUND},
    ),
)
@extend_schema(tags=["memory"])
class MemoryEntryViewSet(
    OwnedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """What Attune learned about the caller's preferences, per context, and what they wrote."""

    queryset = MemoryEntry.objects.all()
    serializer_class = s.MemoryEntrySerializer
    filterset_class = filters.MemoryEntryFilter
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        if self.action == "list":  # vectors are not shown, and costly to read and parse
            return queryset.defer("embedding", "embedding_bits")
        return queryset

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = validated(s.MemoryEntryCreateSerializer, request.data).validated_data
        entry = services.add_preference(request.user, **data)
        return Response(s.MemoryEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        entry = self.get_object()
        data = validated(s.MemoryEntryUpdateSerializer, request.data).validated_data
        services.update_preference(entry, **data)
        return Response(s.MemoryEntrySerializer(entry).data)

    def perform_destroy(self, instance: MemoryEntry) -> None:
        services.delete_preference(instance)

    @extend_schema(
        summary="Restore a replaced preference",
        description="A newer entry that contradicted it for similar contexts replaced it "
        "(`superseded_by`); restored, it is retrieved again. It replaces nothing by this.",
        request=None,
        examples=ex.RESTORED,
        responses={
            200: s.MemoryEntrySerializer,
            400: error("It was not replaced: it is active.", **ex.NOT_REPLACED),
            404: NOT_FOUND,
        },
    )
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str | None = None) -> Response:
        """Make a replaced (superseded) preference active again."""
        entry = services.restore(self.get_object())
        return Response(s.MemoryEntrySerializer(entry).data)
