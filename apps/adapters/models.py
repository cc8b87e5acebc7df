"""Adapter versions, preference vectors, users' coefficients η, and the fit jobs behind them.

Files live in the artifact store (:mod:`core.artifacts`); rows hold their refs (``sha256:…``),
never a path from a request. One fit job produces at most one adapter version (a unique key),
so a job retried after a worker died can never create two.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

from apps.common.models import OwnedModel


class FitJob(OwnedModel):
    """One request to fit something on the ``gpu`` queue, with its live progress.

    A worker claims it before working on it and keeps a heartbeat while it runs; a job whose
    worker died is re-queued by the reaper and done exactly once (:mod:`apps.common.leases`).
    """

    class Kind(models.TextChoices):
        USER_ADAPTER = "user_adapter", "user adapter"
        PREFERENCE_VECTOR = "preference_vector", "preference vector"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "manual"
        THRESHOLD = "threshold", "threshold of new pairs"

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.USER_ADAPTER)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    dimension = models.CharField(max_length=64, blank=True, default="")
    progress = models.FloatField(default=0.0, help_text="Fraction done, 0 to 1.")
    loss = models.FloatField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    celery_task_id = models.CharField(max_length=255, blank=True, default="")
    edit_cutoff = models.BigIntegerField(default=0, help_text="Edits up to this id are used.")
    comparison_cutoff = models.BigIntegerField(default=0)
    rating_cutoff = models.BigIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    # The job's lease (apps.common.leases): when its message last went out, who holds it, and
    # that holder's last sign of life; a stale heartbeat means the worker died.
    queued_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(name="ad_job_user_status", fields=["user", "status"])]

    @property
    def is_open(self) -> bool:
        return self.status in {self.Status.QUEUED, self.Status.RUNNING}


class AdapterVersion(OwnedModel):
    """A user's fitted LoRA adapter: where it is, what it was fitted on, how it evaluated."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "candidate"
        ACTIVE = "active", "active"
        RETIRED = "retired", "retired"

    class Method(models.TextChoices):
        DPO = "dpo", "DPO (pairs)"
        KTO = "kto", "KTO (thumbs)"

    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)
    method = models.CharField(max_length=8, choices=Method.choices)
    fit_job = models.OneToOneField(
        FitJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="adapter_version"
    )
    base_model = models.CharField(max_length=300)
    base_fingerprint = models.CharField(max_length=64)
    rank = models.PositiveSmallIntegerField()
    target_modules = ArrayField(models.CharField(max_length=100), default=list)
    storage_path = models.CharField(max_length=500, help_text="Its ref in the artifact store.")
    data_counts = models.JSONField(default=dict)
    training = models.JSONField(default=dict)
    evaluation = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["user", "version"], name="ad_version_unique"),
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status="active"),
                name="ad_one_active_per_user",
            ),
        ]

    @property
    def label(self) -> str:
        return f"user-{self.user_id}-v{self.version}"

    def __str__(self) -> str:
        return f"{self.label} ({self.status})"


class PreferenceVector(models.Model):
    """φ = θ₊ − θ₋ for one dimension, shared by every user (their η differ)."""

    name = models.CharField(max_length=64)
    attribute = models.CharField(max_length=32)
    positive = models.CharField(max_length=32)
    negative = models.CharField(max_length=32)
    version = models.PositiveIntegerField(default=1)
    is_active = models.BooleanField(default=True)
    base_model = models.CharField(max_length=300)
    base_fingerprint = models.CharField(max_length=64)
    rank = models.PositiveSmallIntegerField()
    positive_path = models.CharField(max_length=500)
    negative_path = models.CharField(max_length=500)
    training = models.JSONField(default=dict)
    fit_job = models.OneToOneField(
        FitJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="vector"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="ad_vector_version_unique"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(is_active=True), name="ad_one_active_vector"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class PreferenceCoefficient(OwnedModel):
    """A user's η for one preference vector (by the vector's name, so it survives refits)."""

    class Origin(models.TextChoices):
        USER = "user", "set by the user"
        FITTED = "fitted", "fitted from ratings"
        COLD_START = "cold_start", "from similar users"

    vector_name = models.CharField(max_length=64)
    eta = models.FloatField()
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.USER)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["vector_name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "vector_name"], name="ad_one_eta_per_vector")
        ]


class EtaEvidence(OwnedModel):
    """A user's evidence for fitting η, as running sums (``apps.adapters.etas``).

    ``sums`` maps every preference dimension's name to ``[sum of signals, number of signals]``
    from the user's edits and ratings; the feedback services keep it current in the
    transaction that stores, changes or deletes one. NULL until computed from the user's history
    (the row then only serializes writers with that computation). Deleted with the user's data.
    """

    sums = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user"], name="ad_one_evidence_per_user")]

    def __str__(self) -> str:
        return f"η evidence of {self.user_id}"
