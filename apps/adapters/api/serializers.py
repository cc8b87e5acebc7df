from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from apps.adapters.models import AdapterVersion, FitJob, PreferenceVector
from core.dimensions import DIMENSION_NAMES


class FitJobSerializer(serializers.ModelSerializer):
    adapter_version = serializers.SerializerMethodField()

    class Meta:
        model = FitJob
        fields = [
            "id", "kind", "trigger", "status", "dimension", "progress", "loss", "attempts",
            "error", "created_at", "started_at", "finished_at", "adapter_version",
        ]  # fmt: skip
        read_only_fields = fields

    def get_adapter_version(self, job: FitJob) -> int | None:
        version = getattr(job, "adapter_version", None)
        return version.pk if version is not None else None


class AdapterVersionSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)

    class Meta:
        model = AdapterVersion
        fields = [
            "id", "label", "version", "status", "method", "base_model", "base_fingerprint",
            "rank", "target_modules", "data_counts", "training", "evaluation", "fit_job",
            "created_at", "activated_at",
        ]  # fmt: skip
        read_only_fields = fields


class PreferenceVectorSerializer(serializers.ModelSerializer):
    class Meta:
        model = PreferenceVector
        fields = [
            "id", "name", "attribute", "positive", "negative", "version", "base_model", "rank",
            "training", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class EtasSerializer(serializers.Serializer):
    """η per preference vector name, e.g. ``{"format-bullets-vs-prose": 1.0}``."""

    coefficients = serializers.DictField(child=serializers.FloatField())

    def validate_coefficients(self, value: dict[str, float]) -> dict[str, float]:
        limit = settings.ATTUNE_MAX_ABS_ETA
        known = set(PreferenceVector.objects.filter(is_active=True).values_list("name", flat=True))
        errors = []
        for name, eta in value.items():
            if name not in known:
                errors.append(f"unknown preference vector {name!r}")
            elif abs(eta) > limit:
                errors.append(
                    f"{name}: |η| must be at most {limit} (larger values break the model)"
                )
        if errors:
            raise serializers.ValidationError(errors)
        return value


class VectorFitRequestSerializer(serializers.Serializer):
    dimension = serializers.CharField(max_length=64)

    def validate_dimension(self, value: str) -> str:
        if value not in DIMENSION_NAMES:
            raise serializers.ValidationError(f"choose one of {sorted(DIMENSION_NAMES)}")
        return value
