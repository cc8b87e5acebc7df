"""Feedback endpoints: interactions, ratings, edits and comparisons of the caller (staff: read all).

Views validate with serializers and write through ``apps.feedback.services``. Reads are scoped by
:class:`apps.common.api.OwnedViewSetMixin`: another user's object answers 404.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from apps.common.api import OwnedViewSetMixin, validated
from apps.common.schema import NOT_FOUND, TOO_LARGE, error
from apps.feedback import services
from apps.feedback.api import examples as ex
from apps.feedback.api import filters
from apps.feedback.api import serializers as s
from apps.feedback.models import Comparison, Edit, Interaction, Rating

DELETED = {204: None, 404: NOT_FOUND}


def _read_docs(name: str, serializer: type[BaseSerializer], examples: list) -> dict[str, Any]:
    """Schema of the list, retrieve and destroy actions, with examples."""
    return {
        "list": extend_schema(summary=f"List {name}s", examples=examples),
        "retrieve": extend_schema(
            summary=f"Read one {name}",
            examples=examples,
            responses={200: serializer, 404: NOT_FOUND},
        ),
        "destroy": extend_schema(summary=f"Delete one {name} (hard delete)", responses=DELETED),
    }


class _FeedbackViewSet(
    OwnedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    lookup_value_regex = r"\d+"
    unlisted: tuple[str, ...] = ()
    """Columns a list leaves unread (vectors: not shown, and costly to read and parse)."""

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        return queryset.defer(*self.unlisted) if self.action == "list" else queryset

    def perform_destroy(self, instance: Any) -> None:
        services.delete(instance)

    @staticmethod
    def _answer(serializer: BaseSerializer, instance: Any, code: int = 200) -> Response:
        """``instance`` rendered by the request's own serializer: one serializer per request."""
        serializer.instance = instance
        return Response(serializer.data, status=code)


@extend_schema_view(
    **_read_docs("interaction", s.InteractionSerializer, ex.INTERACTION),
    create=extend_schema(
        summary="Record an interaction",
        examples=ex.INTERACTION,
        responses={
            201: s.InteractionSerializer,
            400: error("Invalid input, naming the field.", **ex.INTERACTION_ERRORS),
            413: TOO_LARGE,
        },
    ),
)
@extend_schema(tags=["feedback"])
class InteractionViewSet(_FeedbackViewSet):
    """Generations shown to the caller, with what personalized them (its prompt is embedded)."""

    queryset = Interaction.objects.all()
    unlisted = ("embedding",)
    serializer_class = s.InteractionSerializer
    filterset_class = filters.InteractionFilter

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = validated(s.InteractionSerializer, request.data)
        interaction = services.create_interaction(request.user, **serializer.validated_data)
        return self._answer(serializer, interaction, status.HTTP_201_CREATED)


@extend_schema_view(
    **_read_docs("rating", s.RatingSerializer, ex.RATING),
    create=extend_schema(
        summary="Rate an interaction (replaces the caller's earlier rating of it)",
        description="201 when the rating is new, 200 when it replaced the earlier one.",
        examples=ex.RATING,
        responses={
            201: s.RatingSerializer,
            200: s.RatingSerializer,
            400: error("Invalid input, naming the field.", **ex.RATING_ERRORS),
            404: error("The interaction is unknown or another user's.", **ex.UNKNOWN_INTERACTION),
            413: TOO_LARGE,
        },
    ),
    partial_update=extend_schema(
        summary="Change a rating",
        request=s.RatingUpdateSerializer,
        examples=ex.RATING_UPDATE,
        responses={
            200: s.RatingSerializer,
            400: error("Invalid input, naming the field.", **ex.RATING_ERRORS),
            404: NOT_FOUND,
        },
    ),
)
@extend_schema(tags=["feedback"])
class RatingViewSet(_FeedbackViewSet):
    """Thumbs or stars on an interaction: one rating per interaction, changeable."""

    queryset = Rating.objects.all()
    serializer_class = s.RatingSerializer
    filterset_class = filters.RatingFilter

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = validated(s.RatingSerializer, request.data)
        data = serializer.validated_data
        rating, created = services.rate(
            request.user,
            data["interaction_id"],
            thumbs_up=data.get("thumbs_up"),
            stars=data.get("stars"),
            comment=data.get("comment", ""),
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return self._answer(serializer, rating, code)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rating = self.get_object()
        serializer = validated(
            s.RatingUpdateSerializer, request.data, instance=rating, partial=True
        )
        return self._answer(serializer, services.update_rating(rating, **serializer.validated_data))


@extend_schema_view(
    **_read_docs("edit", s.EditSerializer, ex.EDIT),
    create=extend_schema(
        summary="Record an edit of an interaction's output",
        description="The word-level distance and diff are computed; an unchanged text is a no-op.",
        examples=ex.EDIT,
        responses={
            201: s.EditSerializer,
            400: error("Invalid input, naming the field.", **ex.EDIT_ERRORS),
            404: error("The interaction is unknown or another user's.", **ex.UNKNOWN_INTERACTION),
            413: TOO_LARGE,
        },
    ),
)
@extend_schema(tags=["feedback"])
class EditViewSet(_FeedbackViewSet):
    """The caller's edits of outputs; an edit is a record, so it is not changed afterwards."""

    queryset = Edit.objects.all()
    serializer_class = s.EditSerializer
    filterset_class = filters.EditFilter

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = validated(s.EditSerializer, request.data)
        data = serializer.validated_data
        edit = services.record_edit(
            request.user,
            data["interaction_id"],
            edited=data["edited"],
            original=data.get("original", ""),
        )
        return self._answer(serializer, edit, status.HTTP_201_CREATED)


@extend_schema_view(
    **_read_docs("comparison", s.ComparisonSerializer, ex.COMPARISON),
    create=extend_schema(
        summary="Record an A/B comparison",
        examples=ex.COMPARISON,
        responses={
            201: s.ComparisonSerializer,
            400: error("Invalid input, naming the field.", **ex.COMPARISON_ERRORS),
            404: error(
                "A named interaction is unknown or another user's.",
                unknown_interaction={"interaction_b": ["You have no interaction 999."]},
            ),
            413: TOO_LARGE,
        },
    ),
    partial_update=extend_schema(
        summary="Change the choice of a comparison",
        request=s.ComparisonUpdateSerializer,
        examples=ex.COMPARISON_UPDATE,
        responses={200: s.ComparisonSerializer, 404: NOT_FOUND},
    ),
)
@extend_schema(tags=["feedback"])
class ComparisonViewSet(_FeedbackViewSet):
    """Pairwise choices (A, B or tie) between two responses to one prompt."""

    queryset = Comparison.objects.all()
    unlisted = ("embedding",)
    serializer_class = s.ComparisonSerializer
    filterset_class = filters.ComparisonFilter

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = validated(s.ComparisonSerializer, request.data)
        comparison = services.create_comparison(request.user, **serializer.validated_data)
        return self._answer(serializer, comparison, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        comparison = self.get_object()
        change = validated(
            s.ComparisonUpdateSerializer, request.data, instance=comparison, partial=True
        )
        if "choice" in change.validated_data:
            services.update_comparison(comparison, choice=change.validated_data["choice"])
        return Response(s.ComparisonSerializer(comparison).data)
