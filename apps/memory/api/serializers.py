"""Memory serializers: validate input (limits are settings) and shape output; services write."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.common.fields import LimitedCharField, object_id
from apps.memory.models import MemoryEntry

EMBEDDING_FIELDS = ["embedding_model", "embedding_dim", "embedded_at"]


def preference_field(**kwargs: Any) -> LimitedCharField:
    """A preference text: non-blank, at most ``ATTUNE_MAX_PREFERENCE_CHARS`` characters."""
    return LimitedCharField(
        limit="ATTUNE_MAX_PREFERENCE_CHARS",
        help_text="A short readable phrase, e.g. 'brief, bullet points, no emojis'.",
        **kwargs,
    )


class MemoryEntrySerializer(serializers.ModelSerializer):
    """A learned (or user-written) preference and the context it applies to."""

    edit = serializers.IntegerField(source="edit_id", read_only=True, allow_null=True)
    superseded_by = serializers.IntegerField(
        source="superseded_by_id",
        read_only=True,
        allow_null=True,
        help_text="The newer entry that replaced this one for similar contexts: it is kept but "
        "not retrieved until restored (POST …/restore). Null: active.",
    )

    class Meta:
        model = MemoryEntry
        fields = [
            "id",
            "user",
            "preference",
            "context_text",
            "source",
            "origin",
            "edit",
            "superseded_by",
            "superseded_at",
            "created_at",
            "updated_at",
            *EMBEDDING_FIELDS,
        ]
        read_only_fields = fields


class MemoryEntryCreateSerializer(serializers.Serializer):
    """A preference the user writes, for a context given as text or as one of their interactions."""

    preference = preference_field()
    context_text = LimitedCharField(
        limit="ATTUNE_MAX_PROMPT_CHARS",
        required=False,
        allow_blank=True,
        help_text="The kind of prompt it applies to (a sample is best).",
    )
    source = serializers.CharField(max_length=64, required=False, allow_blank=True)
    interaction = object_id(
        source="interaction_id",
        required=False,
        help_text="An interaction whose prompt is the context (instead of context_text).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("context_text", "").strip() and "interaction_id" not in attrs:
            raise serializers.ValidationError(
                {"context_text": ["Give the context (context_text) or an interaction."]}
            )
        return attrs


class MemoryEntryUpdateSerializer(serializers.Serializer):
    """A correction: new preference text (it becomes the user's own), context or source."""

    preference = preference_field(required=False)
    context_text = LimitedCharField(limit="ATTUNE_MAX_PROMPT_CHARS", required=False)
    source = serializers.CharField(max_length=64, required=False, allow_blank=True)
