"""Writes of the audit log: :func:`record` is the only way a row is made."""

from __future__ import annotations

from typing import Any

from django.db import models

from apps.accounts.models import User
from apps.audit.models import AuditEntry

EVERY_USER = "(every user)"


def record(
    actor: User,
    action: AuditEntry.Action,
    target: User | None,
    *,
    summary: str,
    obj: models.Model | None = None,
    **details: Any,
) -> AuditEntry:
    """Record that ``actor`` did ``action`` to ``target``'s data (on ``obj`` when given;
    ``target`` None: to every user's, as a staff export of everything).

    Call it inside the transaction that makes the change (the console does), so the change and
    its row commit together. ``details`` must be JSON-serializable (ids, labels, statuses).
    """
    return AuditEntry.objects.create(
        actor=actor,
        actor_username=actor.get_username(),
        action=action,
        target_user=target,
        target_username=target.get_username() if target is not None else EVERY_USER,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        summary=summary[:500],
        details=details,
    )
