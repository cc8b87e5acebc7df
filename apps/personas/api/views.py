"""Persona endpoints: your profile at ``/api/persona``; profiles to read at ``/api/personas``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.api import OwnedViewSetMixin, validated
from apps.common.schema import NOT_FOUND, TOO_LARGE, error
from apps.personas import selectors, services
from apps.personas.api import examples as ex
from apps.personas.api import filters
from apps.personas.api import serializers as s
from apps.personas.models import PersonaProfile

NO_PERSONA = error("You have no persona profile yet.", **ex.NO_PERSONA)
INVALID = error("Invalid input, naming the field.", **ex.ERRORS)


@extend_schema(tags=["personas"])
class MyPersonaView(APIView):
    """The caller's own persona profile (one per user)."""

    def _own(self, request: Request) -> PersonaProfile:
        persona = selectors.persona_of(request.user)
        if persona is None:
            raise NotFound("You have no persona yet.")
        return persona

    @extend_schema(
        summary="Read my persona",
        examples=ex.PERSONA,
        responses={200: s.PersonaSerializer, 404: NO_PERSONA},
    )
    def get(self, request: Request) -> Response:
        return Response(s.PersonaSerializer(self._own(request)).data)

    @extend_schema(
        summary="Set my persona (create or replace)",
        request=s.PersonaSerializer,
        examples=ex.PERSONA,
        responses={
            201: s.PersonaSerializer,
            200: s.PersonaSerializer,
            400: INVALID,
            413: TOO_LARGE,
        },
    )
    def put(self, request: Request) -> Response:
        serializer = validated(s.PersonaSerializer, request.data)
        persona, created = services.set_persona(request.user, **serializer.validated_data)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(s.PersonaSerializer(persona).data, status=code)

    @extend_schema(
        summary="Change my persona",
        request=s.PersonaSerializer,
        examples=ex.PERSONA_UPDATE,
        responses={200: s.PersonaSerializer, 400: INVALID, 404: NO_PERSONA, 413: TOO_LARGE},
    )
    def patch(self, request: Request) -> Response:
        persona = self._own(request)
        serializer = validated(s.PersonaSerializer, request.data, instance=persona, partial=True)
        services.update_persona(persona, **serializer.validated_data)
        return Response(s.PersonaSerializer(persona).data)

    @extend_schema(summary="Delete my persona", responses={204: None, 404: NO_PERSONA})
    def delete(self, request: Request) -> Response:
        services.delete_persona(self._own(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="List persona profiles (yours; staff: everyone's)", examples=ex.PERSONA
    ),
    retrieve=extend_schema(
        summary="Read one persona profile",
        examples=ex.PERSONA,
        responses={200: s.PersonaSerializer, 404: NOT_FOUND},
    ),
)
@extend_schema(tags=["personas"])
class PersonaViewSet(
    OwnedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Persona profiles the caller may read: their own; staff read everyone's (``?user_id=ID``)."""

    queryset = PersonaProfile.objects.all()
    serializer_class = s.PersonaSerializer
    filterset_class = filters.PersonaFilter
    lookup_value_regex = r"\d+"
