from django.apps import AppConfig


class AdaptersConfig(AppConfig):
    """Per-user LoRA adapters, preference vectors and the jobs that fit them."""

    name = "apps.adapters"
    label = "adapters"
