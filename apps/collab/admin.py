from django.contrib import admin

from apps.collab.models import CollabModelVersion, UserEmbedding


@admin.register(CollabModelVersion)
class CollabModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "version", "status", "progress", "stage", "n_users", "n_pairs", "created_at",
        "activated_at",
    )  # fmt: skip
    list_filter = ("status", "trigger")
    readonly_fields = [f.name for f in CollabModelVersion._meta.fields]


@admin.register(UserEmbedding)
class UserEmbeddingAdmin(admin.ModelAdmin):
    list_display = ("user", "version", "expert", "n_pairs", "created_at")
    list_filter = ("version",)
    exclude = ("vector",)
    readonly_fields = ("user", "version", "expert", "n_pairs")
