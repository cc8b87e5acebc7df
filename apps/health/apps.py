from django.apps import AppConfig


class HealthConfig(AppConfig):
    """/healthz and worker heartbeats."""

    name = "apps.health"
    label = "health"

    def ready(self) -> None:
        from apps.health import (  # noqa: F401  (they connect the Celery worker signals)
            activity,
            heartbeat,
        )
