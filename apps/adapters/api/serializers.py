from __future__ import annotations

from rest_framework import serializers

from apps.adapters.models import AdapterVersion, FitJob, PreferenceVector


class FitJobSerializer(serializers.ModelSerializer):
    adapter_version = serializers.SerializerMethodField()

    class Meta:
        model = FitJob
        fields = [
            "id", "kind", "trigger", "status", "dimension", "progress", "loss", "attempts",
            "error", "created_at", "started_at", "heartbeat_at", "finished_at", "adapter_version",
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
    """η per preference vector name, e.g. ``{"format-bullets-vs-prose": 1.0}``; known vectors
    and the bound ``ATTUNE_MAX_ABS_ETA`` are checked by ``services.set_etas``."""

    coefficients = serializers.DictField(child=serializers.FloatField())


class VectorFitRequestSerializer(serializers.Serializer):
    """A dimension of ``core.dimensions`` (checked by ``services.request_vector_fit``)."""

    dimension = serializers.CharField(max_length=64)
