from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.collab.models import CollabModelVersion, UserEmbedding


class VersionSerializer(serializers.ModelSerializer):
    """A CoPL training run and the version it produced: progress while it runs, then figures."""

    label = serializers.CharField(read_only=True)
    requested_by = serializers.SerializerMethodField()

    class Meta:
        model = CollabModelVersion
        fields = [
            "id", "label", "version", "status", "trigger", "requested_by", "progress", "stage",
            "loss", "attempts", "error", "n_users", "n_responses", "n_pairs", "n_heldout",
            "n_pos_edges", "n_neg_edges", "dimensions", "embeddings_hash", "config", "metrics",
            "expert_eta", "created_at", "started_at", "finished_at", "activated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_requested_by(self, run: CollabModelVersion) -> int | None:
        return run.requested_by_id


class UserEmbeddingSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.version", read_only=True)
    version_status = serializers.CharField(source="version.status", read_only=True)

    class Meta:
        model = UserEmbedding
        fields = ["id", "user", "version", "version_status", "expert", "n_pairs", "created_at"]
        read_only_fields = fields


class CollabMeSerializer(serializers.Serializer):
    version = serializers.IntegerField(allow_null=True, help_text="The active CoPL version.")
    how = serializers.ChoiceField(
        choices=["trained", "adapted", "persona", "none"],
        help_text="How your embedding was obtained.",
    )
    explanation = serializers.CharField()
    similar_users = serializers.IntegerField(
        help_text="How many people (of your namespace) have a taste close to yours."
    )


class MapPointSerializer(serializers.Serializer):
    """One trained user on the version's map."""

    user_id = serializers.IntegerField()
    username = serializers.CharField()
    client_app_id = serializers.IntegerField(
        allow_null=True, help_text="The user's client app (null: a person who logs in)."
    )
    expert = serializers.IntegerField(
        allow_null=True, help_text="The reward model's expert the user is routed to."
    )
    x = serializers.FloatField(help_text="First principal component of the user's embedding.")
    y = serializers.FloatField(help_text="Second principal component.")

    def to_representation(self, point: Any) -> dict[str, Any]:
        """The fields above read straight from a :class:`apps.collab.embedding_map.MapPoint`
        (already typed and rounded): a page of 10,000 points costs milliseconds, not the
        quarter second of per-field conversion."""
        return {
            "user_id": point.user_id,
            "username": point.username,
            "client_app_id": point.client_app_id,
            "expert": point.expert,
            "x": point.x,
            "y": point.y,
        }


class SimilarUserSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    client_app_id = serializers.IntegerField(allow_null=True)
    similarity = serializers.FloatField()


class UserInsightSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    how = serializers.CharField()
    similar = SimilarUserSerializer(many=True)
    starting_coefficients = serializers.DictField(child=serializers.FloatField())


class SimilarQuerySerializer(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=100, default=5)
    all_namespaces = serializers.BooleanField(default=False)
