"""Persona endpoints: your profile at ``/api/persona``; profiles to read at ``/api/personas``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.api import OwnedViewSetMixin
from apps.common.filters import OwnedFilterSet
from apps.common.schema import MALFORMED, NOT_FOUND, TOO_LARGE, error, example
from apps.personas import selectors, services
from apps.personas.api.serializers import PersonaSerializer
from apps.personas.models import PersonaProfile

PERSONA_IN = {
    "text": "I teach primary school and write newsletters for parents.",
    "attributes": {"role": "teacher", "tone": "warm", "languages": ["en", "nl"]},
}
PERSONA_OUT = {
    "id": 4,
    "user": 3,
    **PERSONA_IN,
    "created_at": "2026-05-01T09:30:00Z",
    "updated_at": "2026-05-02T10:00:00Z",
    "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
    "embedding_dim": 384,
    "embedded_at": "2026-05-02T10:00:01Z",
}
EXAMPLES = [
    example("persona", PERSONA_IN, request_only=True),
    example("persona", PERSONA_OUT, response_only=True),
]
NO_PERSONA = error("You have no persona profile yet.", none={"detail": "You have no persona yet."})
INVALID = error(
    "Invalid input, naming the field.",
    not_an_object={"attributes": ["Expected a JSON object."]},
    too_long={"text": ["Ensure this field has no more than 8000 characters."]},
    **MALFORMED,
)


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
        examples=EXAMPLES,
        responses={200: PersonaSerializer, 404: NO_PERSONA},
    )
    def get(self, request: Request) -> Response:
        return Response(PersonaSerializer(self._own(request)).data)

    @extend_schema(
        summary="Set my persona (create or replace)",
        request=PersonaSerializer,
        examples=EXAMPLES,
        responses={201: PersonaSerializer, 200: PersonaSerializer, 400: INVALID, 413: TOO_LARGE},
    )
    def put(self, request: Request) -> Response:
        serializer = PersonaSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        persona, created = services.set_persona(request.user, **serializer.validated_data)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(PersonaSerializer(persona).data, status=code)

    @extend_schema(
        summary="Change my persona",
        request=PersonaSerializer,
        examples=[example("new tone", {"attributes": {"tone": "playful"}}, request_only=True)],
        responses={200: PersonaSerializer, 400: INVALID, 404: NO_PERSONA, 413: TOO_LARGE},
    )
    def patch(self, request: Request) -> Response:
        persona = self._own(request)
        serializer = PersonaSerializer(persona, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.update_persona(persona, **serializer.validated_data)
        return Response(PersonaSerializer(persona).data)

    @extend_schema(summary="Delete my persona", responses={204: None, 404: NO_PERSONA})
    def delete(self, request: Request) -> Response:
        services.delete_persona(self._own(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PersonaFilter(OwnedFilterSet):
    class Meta:
        model = PersonaProfile
        fields: list[str] = []


@extend_schema_view(
    list=extend_schema(
        summary="List persona profiles (yours; staff: everyone's)", examples=EXAMPLES
    ),
    retrieve=extend_schema(
        summary="Read one persona profile",
        examples=EXAMPLES,
        responses={200: PersonaSerializer, 404: NOT_FOUND},
    ),
)
@extend_schema(tags=["personas"])
class PersonaViewSet(
    OwnedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Persona profiles the caller may read: their own; staff read everyone's (``?user_id=ID``)."""

    queryset = PersonaProfile.objects.all()
    serializer_class = PersonaSerializer
    filterset_class = PersonaFilter
    lookup_value_regex = r"\d+"
