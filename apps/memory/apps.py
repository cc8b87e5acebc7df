from django.apps import AppConfig


class MemoryConfig(AppConfig):
    """CIPHER memory: readable preferences learned from edits, retrieved by context."""

    name = "apps.memory"
    label = "memory"

    def ready(self) -> None:
        """An entry embedded later supersedes then (``apps.memory.services.supersede``)."""
        from apps.common.embeddings import embedded
        from apps.memory.models import MemoryEntry
        from apps.memory.services import supersede_embedded

        embedded.connect(supersede_embedded, sender=MemoryEntry, dispatch_uid="memory-supersede")
