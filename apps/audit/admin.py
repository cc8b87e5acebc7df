"""The audit log in the Django admin: read-only for everyone, superusers included, so the log
cannot be edited from the place whose changes it partly records."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from apps.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_username", "action", "target_username", "summary")
    list_filter = ("action",)
    search_fields = ("actor_username", "target_username", "summary")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
