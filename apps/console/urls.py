"""The admin console's URLs (namespace ``console``), staff only."""

from django.urls import path

from apps.console import views
from apps.web import converters  # noqa: F401  (registers the "id" converter)

app_name = "console"

urlpatterns = [
    path("", views.users, name="users"),
    path("users/<id:pk>", views.user_detail, name="user"),
    path("users/<id:pk>/adapters/<id:version>/promote", views.promote, name="promote"),
    path("users/<id:pk>/adapters/roll-back", views.roll_back, name="roll-back"),
    path("users/<id:pk>/fit", views.start_fit, name="fit"),
    path("jobs", views.jobs, name="jobs"),
    path("jobs.json", views.jobs_json, name="jobs-json"),
    path("plots", views.plots_page, name="plots"),
    path("audit", views.audit_page, name="audit"),
]
