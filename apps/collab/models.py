"""CoPL versions: one training run of the GNN and the reward model over everyone's feedback, and
the user embeddings it produced (pgvector).

A :class:`CollabModelVersion` row is created when a run is requested and is that run's job row
(status, progress) as well as its result (counts, metrics, artifact folder). Files live under
``settings.ATTUNE_COPL_ROOT`` in a folder named after the version number (a retried run writes
the same folder); rows hold paths relative to it. At most one version is active.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from pgvector.django import HnswIndex, VectorField

from apps.common.models import OwnedModel

USER_EMBEDDING_DIMENSIONS = 64
"""Width of the GNN's user embeddings (the width the CoPL benchmark meets its targets with);
another width needs a migration."""


class CollabModelVersion(models.Model):
    """One CoPL training run and the version of user embeddings + reward model it produced."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        ACTIVE = "active", "active"
        RETIRED = "retired", "retired"
        FAILED = "failed", "failed"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "manual (API)"
        COMMAND = "command", "management command"
        THRESHOLD = "threshold", "threshold of new pairs"

    version = models.PositiveIntegerField(unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    progress = models.FloatField(default=0.0, help_text="Fraction done, 0 to 1.")
    stage = models.CharField(max_length=32, blank=True, default="")
    loss = models.FloatField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    celery_task_id = models.CharField(max_length=255, blank=True, default="")
    error = models.TextField(blank=True, default="")
    # The run's lease (apps.common.leases): when its message last went out, who holds it, and
    # that holder's last sign of life; a stale heartbeat means the worker died.
    queued_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The newest feedback ids the run may use (fixed at request time, so a retry sees the same).
    edit_cutoff = models.BigIntegerField(default=0)
    comparison_cutoff = models.BigIntegerField(default=0)
    rating_cutoff = models.BigIntegerField(default=0)
    # What it was trained on and what it produced.
    n_users = models.PositiveIntegerField(default=0)
    n_responses = models.PositiveIntegerField(default=0)
    n_pairs = models.PositiveIntegerField(default=0)
    n_heldout = models.PositiveIntegerField(default=0)
    n_pos_edges = models.PositiveIntegerField(default=0)
    n_neg_edges = models.PositiveIntegerField(default=0)
    dimensions = models.PositiveSmallIntegerField(default=USER_EMBEDDING_DIMENSIONS)
    storage_path = models.CharField(
        max_length=500, blank=True, default="", help_text="Its ref in the artifact store."
    )
    embeddings_hash = models.CharField(max_length=32, blank=True, default="")
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    expert_eta = models.JSONField(
        default=dict, blank=True, help_text="Starting η per preference vector, per expert."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="active"), name="collab_one_active"
            )
        ]

    @property
    def is_open(self) -> bool:
        return self.status in {self.Status.QUEUED, self.Status.RUNNING}

    @property
    def label(self) -> str:
        return f"copl-v{self.version}"

    def __str__(self) -> str:
        return f"{self.label} ({self.status})"


class UserEmbedding(OwnedModel):
    """A user's GNN embedding in one version (L2-normalized; compare by cosine)."""

    version = models.ForeignKey(
        CollabModelVersion, on_delete=models.CASCADE, related_name="embeddings"
    )
    vector = VectorField(dimensions=USER_EMBEDDING_DIMENSIONS)
    expert = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The reward model's expert this user is routed to."
    )
    n_pairs = models.PositiveIntegerField(default=0, help_text="The user's pairs in training.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "user"], name="collab_one_per_version")
        ]
        indexes = [
            HnswIndex(
                name="collab_user_emb_hnsw",
                fields=["vector"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            models.Index(name="collab_emb_user_version", fields=["user", "version"]),
        ]

    def __str__(self) -> str:
        return f"Embedding of {self.user_id} in v{self.version_id}"
