from __future__ import annotations

from rest_framework import serializers

from apps.common.fields import LimitedCharField, StorableJSONObjectField
from apps.personas.models import PersonaProfile

EMBEDDING_FIELDS = ["embedding_model", "embedding_dim", "embedded_at"]


class PersonaSerializer(serializers.ModelSerializer):
    """A persona profile: free text and structured attributes (a JSON object)."""

    text = LimitedCharField(limit="ATTUNE_MAX_PERSONA_CHARS", required=False, allow_blank=True)
    attributes = StorableJSONObjectField(required=False)

    class Meta:
        model = PersonaProfile
        fields = ["id", "user", "text", "attributes", "created_at", "updated_at", *EMBEDDING_FIELDS]
        read_only_fields = ["user", "created_at", "updated_at", *EMBEDDING_FIELDS]
