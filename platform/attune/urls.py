"""Attune's URL map."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.health.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # the split view serves its start-up script as a file: no inline script (the CSP forbids it)
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include("apps.accounts.api.urls")),
    path("api/", include("apps.feedback.api.urls")),
    path("api/", include("apps.personas.api.urls")),
    path("api/", include("apps.privacy.api.urls")),
    path("api/", include("apps.adapters.api.urls")),
    path("api/", include("apps.memory.api.urls")),
    path("api/", include("apps.collab.api.urls")),
    path("api/", include("apps.generation.api.layer_urls")),
    path("console/", include("apps.console.urls")),
    path("v1/", include("apps.generation.api.urls")),
    path("", include("apps.web.urls")),
]
