"""Feedback serializers: validate input (limits are settings) and shape output; services write."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.common.fields import (
    LimitedCharField,
    LimitedListField,
    object_id,
    storable_text_problem,
)
from apps.feedback.models import Comparison, Interaction

EMBEDDING_FIELDS = ["embedding_model", "embedding_dim", "embedded_at"]


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant", "tool"])
    content = LimitedCharField(limit="ATTUNE_MAX_PROMPT_CHARS", allow_blank=True)


class CoefficientsField(serializers.DictField):
    """Preference-vector coefficients η by preference name: finite numbers, bounded in count."""

    child = serializers.FloatField()

    def to_internal_value(self, data: Any) -> dict[str, float]:
        from django.conf import settings

        value = super().to_internal_value(data)
        if len(value) > settings.ATTUNE_MAX_JSON_ITEMS:
            raise serializers.ValidationError(
                f"At most {settings.ATTUNE_MAX_JSON_ITEMS} coefficients are allowed."
            )
        for name in value:
            if problem := storable_text_problem(name) or (
                None if name else "Names must be non-empty."
            ):
                raise serializers.ValidationError(problem)
        return value


class InteractionSerializer(serializers.ModelSerializer):
    """One generation: ``prompt`` or chat ``messages``, ``output``, and what personalized it."""

    prompt = LimitedCharField(limit="ATTUNE_MAX_PROMPT_CHARS", required=False, allow_blank=True)
    messages = LimitedListField(
        limit="ATTUNE_MAX_MESSAGES", child=MessageSerializer(), required=False
    )
    output = LimitedCharField(limit="ATTUNE_MAX_OUTPUT_CHARS", allow_blank=True)
    preference_coefficients = CoefficientsField(required=False)
    memory_entry_ids = LimitedListField(
        limit="ATTUNE_MAX_JSON_ITEMS", child=object_id(), required=False
    )
    conditioning_preference = LimitedCharField(
        limit="ATTUNE_MAX_COMMENT_CHARS", required=False, allow_blank=True
    )

    class Meta:
        model = Interaction
        fields = [
            "id",
            "user",
            "prompt",
            "messages",
            "source",
            "output",
            "model_id",
            "adapter_version",
            "preference_coefficients",
            "memory_entry_ids",
            "conditioning_preference",
            "layers",
            "created_at",
            *EMBEDDING_FIELDS,
        ]
        # layers: those that shaped a generated answer (set by generation, not by clients)
        read_only_fields = ["user", "layers", "created_at", *EMBEDDING_FIELDS]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("prompt") and not attrs.get("messages"):
            raise serializers.ValidationError({"prompt": ["Give a prompt or chat messages."]})
        return attrs


class ThumbsField(serializers.ChoiceField):
    """``up`` / ``down`` in the API, ``True`` / ``False`` in the database."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=["up", "down"], allow_null=True, **kwargs)

    def to_internal_value(self, data: Any) -> bool | None:
        return None if data is None else super().to_internal_value(data) == "up"

    def to_representation(self, value: bool | None) -> str | None:
        return None if value is None else ("up" if value else "down")


class RatingSerializer(serializers.Serializer):
    """A rating: either ``thumbs`` (up/down) or ``stars`` (1-5), and an optional comment.

    A plain serializer, not a ``ModelSerializer``: rating is the hottest write path, and this
    skips re-reading the model's fields on every request.
    """

    id = serializers.IntegerField(read_only=True)
    user = serializers.IntegerField(source="user_id", read_only=True)
    interaction = object_id(source="interaction_id")
    thumbs = ThumbsField(source="thumbs_up", required=False)
    stars = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    comment = LimitedCharField(limit="ATTUNE_MAX_COMMENT_CHARS", required=False, allow_blank=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        thumbs, stars = attrs.get("thumbs_up"), attrs.get("stars")
        if thumbs is not None and stars is not None:
            raise serializers.ValidationError({"stars": ["Give thumbs or stars, not both."]})
        if not self.partial and thumbs is None and stars is None:
            raise serializers.ValidationError({"thumbs": ["Give thumbs (up/down) or stars (1-5)."]})
        if self.partial and thumbs is None and stars is None:
            for key, name in (("thumbs_up", "thumbs"), ("stars", "stars")):
                if key in attrs:  # cleared without setting the other: a rating needs one
                    raise serializers.ValidationError(
                        {name: ["A rating keeps thumbs or stars; set the other to switch."]}
                    )
        return attrs


class RatingUpdateSerializer(RatingSerializer):
    """A change to a rating: new thumbs or stars (replacing the other), or a new comment."""

    interaction = serializers.IntegerField(source="interaction_id", read_only=True)


class EditSerializer(serializers.Serializer):
    """An edit of an interaction's output; ``original`` defaults to that output.

    A plain serializer (like :class:`RatingSerializer`): edits are a hot write path too.
    """

    id = serializers.IntegerField(read_only=True)
    user = serializers.IntegerField(source="user_id", read_only=True)
    interaction = object_id(source="interaction_id")
    original = LimitedCharField(limit="ATTUNE_MAX_OUTPUT_CHARS", required=False, allow_blank=True)
    edited = LimitedCharField(limit="ATTUNE_MAX_OUTPUT_CHARS", allow_blank=True)
    distance = serializers.IntegerField(
        read_only=True, help_text="Word-level Levenshtein distance from original to edited."
    )
    diff = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField()),
        read_only=True,
        help_text="Word diff: [{op, text}], op in equal/delete/insert.",
    )
    is_noop = serializers.BooleanField(read_only=True, help_text="No word changed (distance 0).")
    created_at = serializers.DateTimeField(read_only=True)


class ComparisonSerializer(serializers.ModelSerializer):
    """Two responses to one prompt and the choice; each response as text or as an interaction."""

    prompt = LimitedCharField(limit="ATTUNE_MAX_PROMPT_CHARS", required=False, allow_blank=True)
    response_a = LimitedCharField(limit="ATTUNE_MAX_OUTPUT_CHARS", required=False, allow_blank=True)
    response_b = LimitedCharField(limit="ATTUNE_MAX_OUTPUT_CHARS", required=False, allow_blank=True)
    interaction_a = object_id(source="interaction_a_id", required=False, allow_null=True)
    interaction_b = object_id(source="interaction_b_id", required=False, allow_null=True)

    class Meta:
        model = Comparison
        fields = [
            "id",
            "user",
            "prompt",
            "source",
            "response_a",
            "response_b",
            "interaction_a",
            "interaction_b",
            "choice",
            "created_at",
            "updated_at",
            *EMBEDDING_FIELDS,
        ]
        read_only_fields = ["user", "created_at", "updated_at", *EMBEDDING_FIELDS]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = {}
        for side in ("a", "b"):
            if not attrs.get(f"response_{side}") and attrs.get(f"interaction_{side}_id") is None:
                errors[f"response_{side}"] = [f"Give response_{side} or interaction_{side}."]
        no_interaction = not attrs.get("interaction_a_id") and not attrs.get("interaction_b_id")
        if not attrs.get("prompt") and no_interaction:
            errors["prompt"] = ["Give the prompt (or compare interactions, whose prompt is used)."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ComparisonUpdateSerializer(serializers.ModelSerializer):
    """A change of mind: a new choice for a comparison."""

    class Meta:
        model = Comparison
        fields = ["choice"]
