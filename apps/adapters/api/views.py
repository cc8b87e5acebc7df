"""Adapter endpoints: fit jobs with live progress, versions with promote / roll back, preference
vectors and the user's coefficients η."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.adapters import selectors, services
from apps.adapters.api import serializers as s
from apps.adapters.models import AdapterVersion, FitJob
from apps.common.api import OwnedViewSetMixin

CONFLICT_EXAMPLE = OpenApiExample(
    "too few pairs",
    value={"detail": "A fit needs at least 8 preference pairs; this user has 3. …", "needed": 8,
           "available": 3},
    response_only=True,
    status_codes=["409"],
)  # fmt: skip


@extend_schema(tags=["adapters"])
class FitJobViewSet(OwnedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Fit jobs and their progress (status, fraction done, latest loss)."""

    queryset = FitJob.objects.select_related("adapter_version")
    serializer_class = s.FitJobSerializer
    filterset_fields = ["status", "kind"]

    @extend_schema(
        request=None,
        responses={
            202: s.FitJobSerializer,
            200: OpenApiResponse(s.FitJobSerializer, description="a fit is already running"),
            409: OpenApiResponse(description="too few pairs; says how many are needed"),
        },
        examples=[CONFLICT_EXAMPLE],
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Start fitting the caller's adapter now (DPO from pairs, or KTO from thumbs)."""
        try:
            job, created = services.request_fit(request.user)
        except services.NotEnoughData as err:
            return Response(
                {"detail": str(err), "needed": err.needed, "available": err.available},
                status=status.HTTP_409_CONFLICT,
            )
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        return Response(s.FitJobSerializer(job).data, status=code)


@extend_schema(tags=["adapters"])
class AdapterVersionViewSet(
    OwnedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The caller's adapter versions with their training and evaluation figures."""

    queryset = AdapterVersion.objects.all()
    serializer_class = s.AdapterVersionSerializer
    filterset_fields = ["status"]

    @extend_schema(request=None, responses=s.AdapterVersionSerializer)
    @action(detail=True, methods=["post"])
    def promote(self, request: Request, pk: str | None = None) -> Response:
        """Make this version the active adapter (the previous one is retired)."""
        version = services.promote(self.get_object())
        return Response(s.AdapterVersionSerializer(version).data)

    @extend_schema(
        request=None,
        responses={200: s.AdapterVersionSerializer, 409: OpenApiResponse(description="none")},
    )
    @action(detail=False, methods=["post"], url_path="roll-back")
    def roll_back(self, request: Request) -> Response:
        """Retire the active adapter and re-activate the previous one (or fall back to the base)."""
        try:
            previous = services.roll_back(request.user)
        except services.Conflict as err:
            return Response({"detail": str(err)}, status=status.HTTP_409_CONFLICT)
        if previous is None:
            return Response({"detail": "Rolled back to the base model.", "active": None})
        return Response(s.AdapterVersionSerializer(previous).data)


@extend_schema(tags=["adapters"])
class PreferenceVectorViewSet(viewsets.ReadOnlyModelViewSet):
    """The preference vectors every user can weigh with η."""

    serializer_class = s.PreferenceVectorSerializer

    def get_queryset(self):  # noqa: ANN201
        return selectors.active_vectors()

    @extend_schema(request=s.VectorFitRequestSerializer, responses={202: s.FitJobSerializer})
    @action(detail=False, methods=["post"], permission_classes=[permissions.IsAdminUser])
    def fit(self, request: Request) -> Response:
        """(Staff) fit a preference vector for one dimension on the current base model."""
        serializer = s.VectorFitRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = services.request_vector_fit(request.user, serializer.validated_data["dimension"])
        return Response(s.FitJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["adapters"])
class EtasView(APIView):
    """The caller's η per preference vector (0 where unset)."""

    @extend_schema(responses=s.EtasSerializer)
    def get(self, request: Request) -> Response:
        return Response({"coefficients": selectors.etas(request.user)})

    @extend_schema(
        request=s.EtasSerializer,
        responses=s.EtasSerializer,
        examples=[
            OpenApiExample(
                "brief bullets", value={"coefficients": {"format-bullets-vs-prose": 1.0}}
            )
        ],
    )
    def put(self, request: Request) -> Response:
        serializer = s.EtasSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        etas = services.set_etas(request.user, serializer.validated_data["coefficients"])
        return Response({"coefficients": etas})


@extend_schema(tags=["adapters"])
class EtasFitView(APIView):
    """Fit the caller's η from their edits and ratings (values they set themselves are kept)."""

    @extend_schema(request=None, responses=s.EtasSerializer)
    def post(self, request: Request) -> Response:
        from apps.adapters.etas import fit_etas

        fitted = fit_etas(request.user)
        return Response({"coefficients": selectors.etas(request.user), "fitted": fitted})
