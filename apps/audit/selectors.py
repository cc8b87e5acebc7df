"""Reads of the audit log for the console: entries newest first, filtered by actor and by user;
and, beside them, the Django admin's own change log (``LogEntry``), filtered the same way."""

from __future__ import annotations

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet

from apps.accounts.models import User
from apps.audit.models import AuditEntry


def find_user(value: str) -> User | None:
    """A user named by id or username (what the console's filter fields take); None if unknown."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit() and len(value) < 19:
        return User.objects.filter(pk=int(value)).first()
    return User.objects.filter(username=value).first()


def entries(actor: User | None = None, target: User | None = None) -> QuerySet[AuditEntry]:
    """Audit rows, newest first; only ``actor``'s and/or only those on ``target``'s data."""
    rows = AuditEntry.objects.all()
    if actor is not None:
        rows = rows.filter(actor=actor)
    if target is not None:
        rows = rows.filter(target_user=target)
    return rows.order_by("-created_at", "-id")


def admin_changes(
    actor: User | None = None, target: User | None = None, limit: int = 50
) -> list[LogEntry]:
    """The Django admin's log (users, keys, client apps changed in /admin/), newest first. A
    ``target`` keeps the entries on that user's account."""
    rows = LogEntry.objects.select_related("user", "content_type")
    if actor is not None:
        rows = rows.filter(user=actor)
    if target is not None:
        user_type = ContentType.objects.get_for_model(User)
        rows = rows.filter(content_type=user_type, object_id=str(target.pk))
    return list(rows.order_by("-action_time", "-id")[:limit])


def staff_actors() -> QuerySet[User]:
    """Everyone who appears as an actor in the log, for the filter's choices."""
    ids = AuditEntry.objects.exclude(actor=None).values("actor").distinct()
    return User.objects.filter(Q(pk__in=ids) | Q(is_staff=True)).order_by("username")
