from django.apps import AppConfig


class CommonConfig(AppConfig):
    """Shared building blocks (owner scoping, API errors) and the pgvector extension migration."""

    name = "apps.common"
    label = "common"
