from django.apps import AppConfig


class TestAppConfig(AppConfig):
    """Exists only in tests: an owned model with a vector column, and an owner-scoped API."""

    name = "tests.support.testapp"
    label = "testapp"
