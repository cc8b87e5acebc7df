from django.contrib import admin

from apps.adapters.models import AdapterVersion, FitJob, PreferenceCoefficient, PreferenceVector


@admin.register(AdapterVersion)
class AdapterVersionAdmin(admin.ModelAdmin):
    list_display = ("user", "version", "status", "method", "rank", "created_at", "activated_at")
    list_filter = ("status", "method")
    readonly_fields = [f.name for f in AdapterVersion._meta.fields]


@admin.register(FitJob)
class FitJobAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "kind", "status", "progress", "loss", "attempts", "created_at")
    list_filter = ("status", "kind")
    readonly_fields = [f.name for f in FitJob._meta.fields]


@admin.register(PreferenceVector)
class PreferenceVectorAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "is_active", "rank", "created_at")


@admin.register(PreferenceCoefficient)
class PreferenceCoefficientAdmin(admin.ModelAdmin):
    list_display = ("user", "vector_name", "eta", "origin", "updated_at")
