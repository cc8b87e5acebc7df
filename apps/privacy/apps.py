from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """A user's own data as a whole: export everything, delete everything."""

    name = "apps.privacy"
    label = "privacy"
