"""CoPL endpoints. Staff: versions with their figures, start a training run, its progress,
activate (roll back), the embedding map, a user's similar users. Everyone: ``/api/collab/me``
(how their embedding was obtained and how many people are like them, never who) and their own
embedding rows."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, pagination, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import User
from apps.collab import selectors, services
from apps.collab.api import examples as ex
from apps.collab.api import serializers as s
from apps.collab.models import CollabModelVersion, UserEmbedding
from apps.common.api import OwnedViewSetMixin, validated
from apps.common.schema import NOT_FOUND, STAFF_ONLY, error

NOT_ENOUGH = error(
    "Too little feedback to train; says how much is needed and available.", **ex.NOT_ENOUGH
)
NOT_ACTIVATABLE = error(
    "The version cannot be activated (not trained, or its files are gone).", **ex.NOT_ACTIVATABLE
)


class MapPagination(pagination.LimitOffsetPagination):
    """The map's pages: larger than other lists' (a client draws thousands of points), ordered
    by user id; a limit over the maximum is served as the maximum, as elsewhere."""

    default_limit = 1000
    max_limit = 10_000

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["description"] = (
                    f"Points per page (default {self.default_limit:,}, at most "
                    f"{self.max_limit:,}: a larger limit is served as {self.max_limit:,})."
                )
                parameter["schema"] = {"type": "integer", "default": self.default_limit}
            elif parameter["name"] == self.offset_query_param:
                parameter["description"] = "Points to skip, in user-id order (default 0)."
        return parameters

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        found = super().get_paginated_response_schema(schema)
        found["properties"]["count"]["example"] = 10000
        found["properties"]["count"]["description"] = "Trained users in this version."
        found["properties"]["next"]["example"] = ex.MAP_NEXT
        found["properties"]["previous"]["example"] = None
        return found


@extend_schema(tags=["collab"])
class VersionViewSet(viewsets.ReadOnlyModelViewSet):
    """(Staff) CoPL versions: each is one training run, with its progress while it runs and its
    figures (users, responses, pairs, edges, held-out accuracy, timings) once trained."""

    queryset = CollabModelVersion.objects.all()
    serializer_class = s.VersionSerializer
    permission_classes = [permissions.IsAdminUser]
    filterset_fields = ["status"]
    lookup_value_regex = r"\d+"

    @extend_schema(
        request=None,
        responses={
            202: s.VersionSerializer,
            200: OpenApiResponse(s.VersionSerializer, description="a run is already open"),
            403: STAFF_ONLY,
            409: NOT_ENOUGH,
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Train a new version now on the gpu queue (GNN + reward model); it is activated when
        it finishes. Progress: ``GET /api/collab/versions/{id}``."""
        run, created = services.request_training(requested_by=request.user)
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        return Response(s.VersionSerializer(run).data, status=code)

    @extend_schema(
        request=None,
        responses={200: s.VersionSerializer, 403: STAFF_ONLY, 404: NOT_FOUND, 409: NOT_ACTIVATABLE},
    )
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        """Make this trained version the active one (roll back or forward)."""
        run = services.activate(self.get_object())
        return Response(s.VersionSerializer(run).data)

    @extend_schema(
        responses={200: s.MapPointSerializer(many=True), 403: STAFF_ONLY, 404: NOT_FOUND},
        examples=ex.MAP_POINT,
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="map",
        pagination_class=MapPagination,
        filter_backends=[],  # the versions' status filter is not the map's
    )
    def embedding_map(self, request: Request, pk: str | None = None) -> Response:
        """Every trained user of this version in 2-D (the first two principal components),
        ordered by user id, a page at a time (``limit`` default 1,000, at most 10,000). The
        map is computed once per version and set of embeddings, so pages are cheap."""
        points = selectors.embedding_map_points(self.get_object())
        page = self.paginate_queryset(points)
        return self.get_paginated_response(s.MapPointSerializer(page, many=True).data)


@extend_schema(tags=["collab"])
class UserEmbeddingViewSet(
    OwnedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Your trained embedding in each CoPL version (staff: everyone's); the vector itself is
    not shown."""

    queryset = UserEmbedding.objects.select_related("version").order_by("-version__version")
    serializer_class = s.UserEmbeddingSerializer
    lookup_value_regex = r"\d+"

    @extend_schema(responses={200: s.UserEmbeddingSerializer, 404: NOT_FOUND})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)


@extend_schema(tags=["collab"])
class MyCollabView(APIView):
    """How Attune's collaborative layer sees you."""

    @extend_schema(responses=s.CollabMeSerializer)
    def get(self, request: Request) -> Response:
        """Whether your embedding was learned with everyone's (trained), adapted from your few
        ratings, taken from your persona, or is not available yet; and how many people of your
        namespace have a taste close to yours (a count, never who)."""
        version = selectors.active_version()
        _, how = selectors.user_embedding(request.user)
        data = {
            "version": version.version if version is not None else None,
            "how": how,
            "explanation": selectors.HOW_EXPLAINED[how],
            "similar_users": selectors.similar_users_count(request.user),
        }
        return Response(s.CollabMeSerializer(data).data)


@extend_schema(tags=["collab"])
class UserInsightView(APIView):
    """(Staff) one user's collaborative picture: how their embedding was obtained, their most
    similar users and their starting η."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        parameters=[
            OpenApiParameter("k", int, description="similar users to list (1-100, default 5)"),
            OpenApiParameter(
                "all_namespaces", bool, description="search every namespace, not only the user's"
            ),
        ],
        responses={
            200: s.UserInsightSerializer,
            400: error("A query parameter is invalid (named).", **ex.BAD_QUERY),
            403: STAFF_ONLY,
            404: NOT_FOUND,
        },
    )
    def get(self, request: Request, user_id: int) -> Response:
        user = get_object_or_404(User, pk=user_id)
        query = validated(s.SimilarQuerySerializer, request.query_params)
        similar = selectors.similar_users(
            user, query.validated_data["k"], all_namespaces=query.validated_data["all_namespaces"]
        )
        data = {
            "user_id": user.pk,
            "how": selectors.user_embedding(user)[1],
            "similar": [
                {
                    "user_id": other.pk,
                    "username": other.username,
                    "client_app_id": other.client_app_id,
                    "similarity": similarity,
                }
                for other, similarity in similar
            ],
            "starting_coefficients": selectors.starting_etas(user),
        }
        return Response(s.UserInsightSerializer(data).data)
