from django.contrib import admin

from apps.memory.models import MemoryEntry


@admin.register(MemoryEntry)
class MemoryEntryAdmin(admin.ModelAdmin):
    """Operators inspect any user's learned preferences (read-only: users correct their own)."""

    list_display = ("id", "user", "source", "origin", "preference", "created_at")
    list_filter = ("origin", "source")
    search_fields = ("preference", "user__username")
    readonly_fields = [f.name for f in MemoryEntry._meta.fields]
