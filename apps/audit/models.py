"""The audit log: one row per staff action on a user's data.

Rows are written by :func:`apps.audit.services.record` in the same transaction as the change they
describe, so a change is never kept without its row. They name the actor and the user whose data
changed by foreign key *and* by username: deleting either account keeps the row (the key becomes
NULL, the name stays). The log is not an ``OwnedModel``: a user's own export or erasure neither
shows nor removes what staff did to their data, and nothing in Attune edits or deletes a row.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        PROMOTE_ADAPTER = "adapter.promote", "promoted an adapter version"
        ROLL_BACK_ADAPTER = "adapter.roll_back", "rolled back the active adapter"
        START_FIT = "fit.start", "started an adapter fit"
        EXPORT_USER_DATA = "data.export", "exported a user's data"
        EXPORT_FEEDBACK = "feedback.export", "exported other users' feedback"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_username = models.CharField(max_length=150)
    action = models.CharField(max_length=64, choices=Action.choices)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_username = models.CharField(max_length=150)
    object_type = models.CharField(max_length=64, blank=True, default="")
    object_id = models.CharField(max_length=64, blank=True, default="")
    summary = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["actor", "-created_at"], name="audit_actor_time"),
            models.Index(fields=["target_user", "-created_at"], name="audit_target_time"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_username}: {self.summary}"
