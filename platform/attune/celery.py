"""The Celery app. Queues: ``default`` (CPU work), ``gpu`` (training, on GPU workers) and
``maintenance`` (the beat schedule's reapers and sweeps: a queue of their own, so that a backlog
of feedback work never delays the task that finds lost jobs)."""

from __future__ import annotations

import os
import threading

from celery import Celery
from celery.signals import task_prerun, worker_process_init
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


# Set once this pool process's warm-up is over (at once where there is none).
_warmed = threading.Event()
_warmed.set()


@worker_process_init.connect
def warm_embedding_model(**_: object) -> None:
    """A pool process of a worker that takes ``default`` work loads the embedding model in the
    background as it starts, so the first edits are not learned ~10 s late (torch and the model
    load on first use otherwise). A thread: process start-up must answer within seconds."""
    if "default" not in app.amqp.queues.consume_from:
        return
    from django.conf import settings

    def load() -> None:
        try:
            from workers import embeddings

            embeddings.load(settings.ATTUNE_EMBEDDING_MODEL)
        finally:
            _warmed.set()

    _warmed.clear()
    threading.Thread(target=load, name="warm-embeddings", daemon=True).start()


@task_prerun.connect
def wait_for_warm_up(**_: object) -> None:
    """A task starts once the warm-up is over: transformers' lazy imports are not thread-safe, and
    a task importing peft while the warm-up imports sentence-transformers failed with
    ``cannot import name 'AutoModel'``. The wait is the load the task would have made anyway."""
    _warmed.wait(timeout=300)
