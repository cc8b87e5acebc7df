"""Celery tasks shared by every app (thin wrappers over services)."""

from __future__ import annotations

from celery import shared_task

from apps.common import embeddings


@shared_task(name="common.embed_pending_rows", queue="default")
def embed_pending_rows(model_label: str) -> int:
    """Embed all rows of ``model_label`` still missing an embedding; idempotent."""
    return embeddings.embed_pending_by_label(model_label)


@shared_task(name="common.sweep_embeddings", queue="default")
def sweep_embeddings() -> list[str]:
    """(Beat) re-send the embedding task of every model with rows still missing a vector."""
    return embeddings.sweep_pending()
