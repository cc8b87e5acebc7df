from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    """Interactions and the feedback on them (ratings, edits, comparisons), and their export."""

    name = "apps.feedback"
    label = "feedback"
