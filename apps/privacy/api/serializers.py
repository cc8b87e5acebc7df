from __future__ import annotations

from rest_framework import serializers

from apps.common.fields import object_id


class ExportQuery(serializers.Serializer):
    user_id = object_id(required=False)


class ErasedSerializer(serializers.Serializer):
    deleted = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rows deleted per model (cascades included)."
    )
