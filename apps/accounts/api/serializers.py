from __future__ import annotations

from rest_framework import serializers

from apps.accounts.models import ClientApp, PersonalToken, User


class MeSerializer(serializers.ModelSerializer):
    client_app = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)  # null: no app

    class Meta:
        model = User
        fields = ["id", "username", "email", "is_staff", "client_app", "external_id", "date_joined"]
        read_only_fields = fields


class ApiKeySerializer(serializers.ModelSerializer):
    """A key as listed: its name and prefix, never the key itself."""

    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        fields = [
            "id",
            "name",
            "key_prefix",
            "created_at",
            "last_used_at",
            "revoked_at",
            "is_active",
        ]
        read_only_fields = ["key_prefix", "created_at", "last_used_at", "revoked_at"]


class PersonalTokenSerializer(ApiKeySerializer):
    class Meta(ApiKeySerializer.Meta):
        model = PersonalToken


class ClientAppSerializer(ApiKeySerializer):
    class Meta(ApiKeySerializer.Meta):
        model = ClientApp


class IssuedKeyMixin(serializers.Serializer):
    key = serializers.CharField(read_only=True, help_text="The key itself: shown this once only.")


class IssuedPersonalTokenSerializer(PersonalTokenSerializer, IssuedKeyMixin):
    class Meta(PersonalTokenSerializer.Meta):
        fields = [*PersonalTokenSerializer.Meta.fields, "key"]


class IssuedClientAppSerializer(ClientAppSerializer, IssuedKeyMixin):
    class Meta(ClientAppSerializer.Meta):
        fields = [*ClientAppSerializer.Meta.fields, "key"]
