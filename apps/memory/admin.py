from django.contrib import admin

from apps.memory.models import MemoryEntry, PendingInference


@admin.register(MemoryEntry)
class MemoryEntryAdmin(admin.ModelAdmin):
    """Operators inspect any user's learned preferences (read-only: users correct their own)."""

    list_display = ("id", "user", "source", "origin", "preference", "superseded_by", "created_at")
    list_filter = ("origin", "source")
    search_fields = ("preference", "user__username")
    readonly_fields = [f.name for f in MemoryEntry._meta.fields]


@admin.register(PendingInference)
class PendingInferenceAdmin(admin.ModelAdmin):
    """Operators see which edits wait to be learned and why (read-only: the sweep retries them)."""

    list_display = ("edit", "attempts", "last_error", "next_attempt_at", "created_at")
    list_filter = ("last_error",)
    readonly_fields = [f.name for f in PendingInference._meta.fields]
