from django.apps import AppConfig


class HealthConfig(AppConfig):
    """/healthz and worker heartbeats."""

    name = "apps.health"
    label = "health"

    def ready(self) -> None:
        from apps.health import heartbeat  # noqa: F401  (connects the Celery worker signals)
