"""The Celery app. Queues: ``default`` (CPU work), ``gpu`` (training, on GPU workers) and
``maintenance`` (the beat schedule's reapers and sweeps: a queue of their own, so that a backlog
of feedback work never delays the task that finds lost jobs)."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue
from kombu.transport import sqlalchemy as database_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")

QUEUES = ("default", "gpu", "maintenance")
# The database broker polls its queues. At kombu's default of once a second a worker whose pool
# processes are all busy looks again only a second later, so it runs at most `concurrency` short
# tasks a second and a steady stream of feedback builds a backlog. (Not a transport option: this
# transport hands those to SQLAlchemy's create_engine.)
database_transport.Transport.polling_interval = 0.1

app = Celery("attune")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = tuple(Queue(name, Exchange(name), routing_key=name) for name in QUEUES)
app.autodiscover_tasks()
app.steps["worker"].add("attune.watchdog:PoolWatchdog")  # a hung pool exits the worker
