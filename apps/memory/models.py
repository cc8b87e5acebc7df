"""CIPHER memory: per user, (context embedding, preference text) pairs retrieved by context.

A :class:`MemoryEntry` holds the context it was learned in (its text, source and MiniLM embedding,
the same embedding as ``Interaction.prompt``) and a readable preference phrase. Its origin says
where the phrase came from: inferred from an edit, used for an output the user accepted unedited,
or written by the user (which outranks the others, see ``apps.memory.cipher``).

Retrieval at generation (``apps.memory.selectors.nearest``) ranks the user's entries held by the
serving process (``apps.memory.cache``), kept current by :class:`MemoryStamp`, which a database
trigger bumps on every change of a user's entries. ``nearest_in_database`` ranks in PostgreSQL
instead: a covering B-tree index on ``(user) INCLUDE (id, embedding_bits)``, the binary-quantized
embedding, gives Hamming candidates that exact cosine distance ranks. An HNSW index is
deliberately absent: with it the planner answers a per-user query from the global graph and can
return fewer than k rows.

Superseding: a newer entry that contradicts older ones for similar contexts replaces them
(``superseded_by``, see ``apps.memory.cipher.superseding``). A replaced entry stays, shown and
restorable, but is never retrieved: the retrieval indexes hold active entries only.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Cast
from pgvector.django import BitField

from apps.common.models import EMBEDDING_DIMENSIONS, EmbeddedModel, OwnedModel
from apps.feedback.models import Edit


def _binary_quantized() -> Cast:
    """The embedding's signs as ``bit(384)`` (pgvector's ``binary_quantize``)."""
    return Cast(
        models.Func("embedding", function="binary_quantize"),
        BitField(length=EMBEDDING_DIMENSIONS),
    )


RETRIEVABLE = models.Q(embedding_bits__isnull=False, superseded_by__isnull=True)
"""Entries retrieval ranks: embedded and not replaced by a newer one (the indexes' condition)."""


class MemoryEntry(OwnedModel, EmbeddedModel):
    """One learned (or written) preference of a user, for the context it belongs to."""

    class Origin(models.TextChoices):
        INFERRED = "inferred", "inferred from an edit"
        USED = "used", "used for an output accepted without edit"
        USER = "user", "written by the user"

    context_text = models.TextField(help_text="The context (prompt) the preference applies to.")
    source = models.CharField(
        max_length=64, blank=True, default="", help_text="Context source, e.g. news, email."
    )
    preference = models.TextField(help_text="The preference, a short readable phrase.")
    origin = models.CharField(max_length=16, choices=Origin.choices)
    edit = models.ForeignKey(
        Edit,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,  # the unique constraint below indexes it
        related_name="memory_entries",
        help_text="The edit it was learned from (none when the user wrote it).",
    )
    superseded_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,  # forgetting the newer entry brings the older ones back
        db_index=False,  # the partial index below (only replaced entries are in it)
        related_name="supersedes",
        help_text="The newer entry that replaced this one for similar contexts (none: active).",
    )
    superseded_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was replaced (none: active)."
    )
    embedding_bits = models.GeneratedField(
        expression=_binary_quantized(),
        output_field=BitField(length=EMBEDDING_DIMENSIONS),
        db_persist=True,
        help_text="The embedding's signs, for the retrieval index.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "memory entries"
        constraints = [
            # One entry per edit: a retried inference task can never learn an edit twice.
            models.UniqueConstraint(fields=["edit"], name="mem_one_entry_per_edit"),
        ]
        indexes = [
            # Partial on retrievable rows (embedded, not replaced): the retrieval scan needs no
            # filter step (~13% faster).
            models.Index(
                name="mem_entry_user_active",
                fields=["user"],
                include=["id", "embedding_bits"],
                condition=RETRIEVABLE,
            ),
            models.Index(
                name="mem_entry_user_written_active",
                fields=["user"],
                include=["id", "embedding_bits"],
                condition=models.Q(origin="user") & RETRIEVABLE,
            ),
            # What a deleted entry replaced (SET NULL, and restored with it): few rows.
            models.Index(
                name="mem_entry_superseded_by",
                fields=["superseded_by"],
                condition=models.Q(superseded_by__isnull=False),
            ),
            models.Index(name="mem_entry_user_time", fields=["user", "-created_at"]),
            models.Index(
                name="mem_entry_emb_pending",
                fields=["id"],
                condition=models.Q(embedding__isnull=True),
            ),
        ]

    def embedding_text(self) -> str:
        return self.context_text

    @property
    def superseded(self) -> bool:
        """Whether a newer entry replaced this one (it is kept, but not retrieved)."""
        return self.superseded_by_id is not None

    def __str__(self) -> str:
        return f"Memory entry {self.pk} of {self.user_id}: {self.preference[:40]}"


class MemoryStamp(models.Model):
    """Versions per user, bumped by a database trigger whenever their entries change (insert,
    update, delete, bulk or not); caches of a user's memory compare them (``apps.memory.cache``):
    ``version`` counts every change (statement), ``rewrites`` only updates and deletes. The same
    trigger logs which entries each version touched (:class:`MemoryChange`) for the versions
    after ``logged_from``. No foreign key: the trigger also fires while a user's rows are being
    deleted."""

    user_id = models.BigIntegerField(primary_key=True)
    version = models.BigIntegerField(default=0)
    rewrites = models.BigIntegerField(default=0)
    logged_from = models.BigIntegerField(
        default=0, help_text="Every change after this version is in the change log."
    )

    def __str__(self) -> str:
        return f"Memory stamp of {self.user_id}: {self.version}"


class MemoryChange(models.Model):
    """An entry that version ``version`` of the user's memory inserted, updated or deleted.

    Written by the trigger of :class:`MemoryStamp` (migration 0005), so a cached copy at an older
    version reads only the entries changed since (``apps.memory.cache``). Kept for the user's
    newest ``CHANGE_LOG_VERSIONS`` versions; a statement that changes more than
    ``CHANGE_LOG_BULK`` of a user's entries, or deletes all that were left (their data erased),
    logs none of them and drops the user's log (``logged_from`` moves past it; copies load the
    memory again)."""

    pk = models.CompositePrimaryKey("user_id", "version", "entry_id")
    user_id = models.BigIntegerField()
    version = models.BigIntegerField()
    entry_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"Memory entry {self.entry_id} of {self.user_id} changed in {self.version}"


CHANGE_LOG_VERSIONS = 64
CHANGE_LOG_BULK = 1000


class PendingInference(models.Model):
    """An edit whose preference is not learned yet.

    Stored with the edit (``apps.memory.services.schedule_inference``) and removed once the edit
    is learned or found to teach nothing, so an edit whose task failed, gave up or died with its
    worker is still here: ``memory.sweep_inference`` retries the due ones, oldest first. Not an
    owned row (the edit is; the export holds the edit), just the memory's to-do list.
    """

    edit = models.OneToOneField(
        Edit, primary_key=True, on_delete=models.CASCADE, related_name="pending_inference"
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Failed inferences so far.")
    last_error = models.CharField(
        max_length=32, blank=True, default="", help_text="The last failure's reason, e.g. timeout."
    )
    next_attempt_at = models.DateTimeField(help_text="When the sweep may take it (again).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(name="mem_pending_due", fields=["next_attempt_at"])]

    def __str__(self) -> str:
        return f"Edit {self.edit_id} waiting to be learned ({self.attempts} failed)"
