"""Attune's Django project package: settings, URLs, entry points and the Celery app.

Named ``attune`` (inside the ``platform/`` folder) so that it never hides the standard library's
``platform`` module.
"""

from attune.celery import app as celery_app

__all__ = ["celery_app"]
