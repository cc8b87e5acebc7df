from django.apps import AppConfig


class PersonasConfig(AppConfig):
    """Each user's persona profile: what they say about themselves, embedded for cold start."""

    name = "apps.personas"
    label = "personas"
