from django.apps import AppConfig


class CollabConfig(AppConfig):
    """CoPL: versioned collaborative user embeddings and the personalized reward model."""

    name = "apps.collab"
    label = "collab"
