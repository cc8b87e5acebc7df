from django.apps import AppConfig


class MemoryConfig(AppConfig):
    """CIPHER memory: readable preferences learned from edits, retrieved by context."""

    name = "apps.memory"
    label = "memory"
