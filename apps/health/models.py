from django.contrib.postgres.fields import ArrayField
from django.db import models


class WorkerHeartbeat(models.Model):
    """A Celery worker's last sign of life, with the queues it consumes (any broker works)."""

    hostname = models.CharField(max_length=255, unique=True)
    queues = ArrayField(models.CharField(max_length=64), default=list)
    pid = models.IntegerField()
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.hostname


class QueueActivity(models.Model):
    """When a task taken from a queue last finished, and when one still running last said so.

    Written by the worker's pool processes (``apps.health.activity``), read by /healthz: a queue
    whose ping is slow because its workers are busy with long fits is busy, not dead, and a
    finished task proves the pool works as well as a ping would."""

    queue = models.CharField(max_length=64, unique=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    busy_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.queue
