"""``GET`` / ``PATCH /api/layers``: the caller's layer switches (an app key: its named end user's).

Each of the four personalization layers (``memory``, ``persona``, ``adapter``, ``vectors``) can be
switched off for every later answer; a request's ``attune.layers`` can turn more off for that
request alone (``/v1/chat/completions``). Errors are the API's shape: ``{field: [messages]}``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.authentication import END_USER_BODY_FIELDS
from apps.common.api import validated
from apps.common.schema import MALFORMED, TOO_LARGE, error, example
from apps.generation import selectors, services
from apps.generation.models import LayerSettings
from core.serving import LAYERS


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true`` or ``false`` only: DRF's field would take ``"no"`` or ``0`` too, and a
    switch that guesses is worse than a clear 400."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class LayerSettingsSerializer(serializers.ModelSerializer):
    """The four layer switches (true: Attune may apply the layer) and when they last changed."""

    memory = StrictBooleanField(required=False, help_text=LayerSettings.description("memory"))
    persona = StrictBooleanField(required=False, help_text=LayerSettings.description("persona"))
    adapter = StrictBooleanField(required=False, help_text=LayerSettings.description("adapter"))
    vectors = StrictBooleanField(required=False, help_text=LayerSettings.description("vectors"))
    updated_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When they last changed; null: never (all on)."
    )

    class Meta:
        model = LayerSettings
        fields = [*LAYERS, "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """An unknown name is refused (a typo would otherwise change nothing, silently); the
        end-user fields an app key names its user with are not switches, and are let through."""
        if isinstance(self.initial_data, dict):
            unknown = set(self.initial_data) - set(self.fields) - set(END_USER_BODY_FIELDS)
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [f"Unknown layer; the layers are {', '.join(LAYERS)}."]
                        for name in sorted(unknown)
                    }
                )
        return attrs


SWITCHES_OUT = {
    "memory": False,
    "persona": True,
    "adapter": True,
    "vectors": True,
    "updated_at": "2026-05-02T10:00:00Z",
}
EXAMPLES = [
    example("memory off", {"memory": False}, request_only=True),
    example("switches", SWITCHES_OUT, response_only=True),
]
INVALID = error(
    "A switch that is not true or false, or an unknown layer (the field names it).",
    not_a_boolean={"memory": ["Must be true or false."]},
    unknown_layer={"memroy": ["Unknown layer; the layers are memory, persona, adapter, vectors."]},
    **MALFORMED,
)


@extend_schema(tags=["generation"])
class LayersView(APIView):
    """The caller's layer switches: all on until changed."""

    @extend_schema(
        summary="Read my layer switches",
        responses={200: LayerSettingsSerializer},
        examples=EXAMPLES,
    )
    def get(self, request: Request) -> Response:
        return Response(LayerSettingsSerializer(selectors.layer_settings(request.user)).data)

    @extend_schema(
        summary="Turn personalization layers on or off",
        request=LayerSettingsSerializer,
        responses={200: LayerSettingsSerializer, 400: INVALID, 413: TOO_LARGE},
        examples=EXAMPLES,
    )
    def patch(self, request: Request) -> Response:
        serializer = validated(LayerSettingsSerializer, request.data, partial=True)
        row = services.set_layers(request.user, **serializer.validated_data)
        return Response(LayerSettingsSerializer(row).data)
