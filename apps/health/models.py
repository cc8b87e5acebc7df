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
