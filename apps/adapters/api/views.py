"""Adapter endpoints: fit jobs with live progress, versions with promote / roll back, preference
vectors and the user's coefficients η."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.adapters import selectors, services
from apps.adapters.api import examples as ex
from apps.adapters.api import serializers as s
from apps.adapters.models import AdapterVersion, FitJob
from apps.common.api import OwnedViewSetMixin, validated
from apps.common.schema import NOT_FOUND, STAFF_ONLY, error

TOO_FEW_PAIRS = error("Too few pairs; says how many are needed.", **ex.TOO_FEW_PAIRS)


@extend_schema(tags=["adapters"])
class FitJobViewSet(OwnedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Fit jobs and their progress (status, fraction done, latest loss)."""

    queryset = FitJob.objects.select_related("adapter_version")
    serializer_class = s.FitJobSerializer
    filterset_fields = ["status", "kind"]
    lookup_value_regex = r"\d+"

    @extend_schema(
        request=None,
        responses={
            202: s.FitJobSerializer,
            200: OpenApiResponse(s.FitJobSerializer, description="a fit is already running"),
            409: TOO_FEW_PAIRS,
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Start fitting the caller's adapter now (DPO from pairs, or KTO from thumbs)."""
        job, created = services.request_fit(request.user)
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
    lookup_value_regex = r"\d+"

    @extend_schema(request=None, responses={200: s.AdapterVersionSerializer, 404: NOT_FOUND})
    @action(detail=True, methods=["post"])
    def promote(self, request: Request, pk: str | None = None) -> Response:
        """Make this version the active adapter (the previous one is retired)."""
        version = services.promote(self.get_object())
        return Response(s.AdapterVersionSerializer(version).data)

    @extend_schema(
        request=None,
        responses={
            200: s.AdapterVersionSerializer,
            409: error("There is no active adapter.", **ex.NO_ACTIVE_ADAPTER),
        },
    )
    @action(detail=False, methods=["post"], url_path="roll-back")
    def roll_back(self, request: Request) -> Response:
        """Retire the active adapter and re-activate the previous one (or fall back to the base)."""
        previous = services.roll_back(request.user)
        if previous is None:
            return Response({"detail": "Rolled back to the base model.", "active": None})
        return Response(s.AdapterVersionSerializer(previous).data)


@extend_schema(tags=["adapters"])
class PreferenceVectorViewSet(viewsets.ReadOnlyModelViewSet):
    """The preference vectors every user can weigh with η."""

    serializer_class = s.PreferenceVectorSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self):  # noqa: ANN201
        return selectors.active_vectors()

    @extend_schema(
        request=s.VectorFitRequestSerializer,
        examples=ex.VECTOR_FIT,
        responses={
            202: s.FitJobSerializer,
            400: error("Not a known dimension.", **ex.BAD_DIMENSION),
            403: STAFF_ONLY,
        },
    )
    @action(detail=False, methods=["post"], permission_classes=[permissions.IsAdminUser])
    def fit(self, request: Request) -> Response:
        """(Staff) fit a preference vector for one dimension on the current base model."""
        serializer = validated(s.VectorFitRequestSerializer, request.data)
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
        responses={
            200: s.EtasSerializer,
            400: error(
                "An unknown preference vector, or |η| over ATTUNE_MAX_ABS_ETA.", **ex.BAD_ETAS
            ),
        },
        examples=ex.ETAS,
    )
    def put(self, request: Request) -> Response:
        serializer = validated(s.EtasSerializer, request.data)
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
