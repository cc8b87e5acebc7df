"""Filling embedding columns: scheduled after commit, computed in batches by a Celery worker.

Writes only. ``schedule_embedding`` is what services call after saving an :class:`EmbeddedModel`
row; ``embed_pending`` is what the task runs; ``sweep_pending`` (beat) sends the task again for
rows a lost task left without a vector (a worker killed with its message unacknowledged). The
torch side (``workers.embeddings``) is imported inside ``embed_pending`` only, so web processes
never load it.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from apps.common.models import EMBEDDING_DIMENSIONS, EmbeddedModel

embedded = Signal()
"""Sent with ``rows``, the rows of ``sender`` just embedded, in the transaction that stores their
vectors, so what follows from an embedding (memory superseding) commits with it."""


class EmbeddingDimensionError(RuntimeError):
    """The configured embedding model writes vectors of another width than the columns hold."""


def schedule_embedding(model: type[EmbeddedModel]) -> None:
    """Queue one batch task for ``model`` once the current transaction commits.

    A broker that cannot take the task is logged, not raised: the row is stored either way, and
    the next task for ``model`` embeds it too (each task embeds every row still pending).
    """
    from apps.common.tasks import embed_pending_rows

    label = model._meta.label
    transaction.on_commit(lambda: embed_pending_rows.delay(label), robust=True)


def embed_pending(model: type[EmbeddedModel], batch_size: int | None = None) -> int:
    """Embed every row of ``model`` that has no embedding yet, a chunk at a time; return how many.

    Each chunk is locked (``SKIP LOCKED``) while it is embedded, so concurrent tasks share the work
    and a text changed meanwhile waits, then clears the fresh vector and schedules another pass.
    Safe to run twice: rows already embedded are not touched.
    """
    from workers import embeddings

    model_name = settings.ATTUNE_EMBEDDING_MODEL
    batch_size = batch_size or settings.ATTUNE_EMBEDDING_BATCH_SIZE
    done = 0
    while True:
        with transaction.atomic():
            rows = list(
                model.objects.filter(embedding__isnull=True)
                .select_for_update(skip_locked=True)
                .order_by("pk")[:batch_size]
            )
            if not rows:
                return done
            vectors = embeddings.encode(
                [row.embedding_text() for row in rows], model_name, batch_size
            )
            width = len(vectors[0])
            if width != EMBEDDING_DIMENSIONS:
                raise EmbeddingDimensionError(
                    f"ATTUNE_EMBEDDING_MODEL={model_name} gives {width}-dimensional vectors; "
                    f"the embedding columns hold {EMBEDDING_DIMENSIONS}"
                )
            now = timezone.now()
            for row, vector in zip(rows, vectors, strict=True):
                row.embedding = vector
                row.embedding_model = model_name
                row.embedding_dim = width
                row.embedded_at = now
            model.objects.bulk_update(
                rows, ["embedding", "embedding_model", "embedding_dim", "embedded_at"]
            )
            embedded.send(sender=model, rows=rows)
        done += len(rows)


def embed_pending_by_label(label: str) -> int:
    """:func:`embed_pending` for the model named ``app_label.ModelName``."""
    model = apps.get_model(label)
    if not issubclass(model, EmbeddedModel):
        raise ValueError(f"{label} has no embedding column")
    return embed_pending(model)


def sweep_pending() -> list[str]:
    """Send ``common.embed_pending_rows`` for every embedded model that has rows without a vector
    (the ``common.sweep_embeddings`` beat task); returns their labels.

    A task lost with a killed worker is never redelivered on the database broker, so its rows
    would wait for the next row of the same model; this bounds the wait. A row whose own task is
    still on its way is harmless: each task embeds what is pending, under ``SKIP LOCKED``.
    """
    from apps.common.tasks import embed_pending_rows

    models = [m for m in apps.get_models() if issubclass(m, EmbeddedModel)]
    labels = [m._meta.label for m in models if m.objects.filter(embedding__isnull=True).exists()]
    for label in labels:
        embed_pending_rows.delay(label)
    return labels
