"""The Celery app. Queues: ``default`` (CPU work) and ``gpu`` (training, on GPU workers)."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")

QUEUES = ("default", "gpu")

app = Celery("attune")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = tuple(Queue(name, Exchange(name), routing_key=name) for name in QUEUES)
app.autodiscover_tasks()
