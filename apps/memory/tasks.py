"""Celery tasks of CIPHER memory (thin wrappers over ``apps.memory.services``): learning one
edit after it is stored, and the periodic sweep that retries edits still waiting."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.memory.inference import InferenceError


@shared_task(
    name="memory.infer_preference",
    queue="default",
    autoretry_for=(InferenceError,),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=settings.ATTUNE_INFERENCE_MAX_RETRIES,
)
def infer_preference(edit_id: int) -> int | None:
    """Learn the preference an edit shows (or store the one used, for an accepted output).

    Idempotent: one memory entry per edit. Returns the entry's id, or None when there is none.
    """
    from apps.memory.services import infer_from_edit

    entry = infer_from_edit(edit_id)
    return entry.pk if entry is not None else None


@shared_task(name="memory.sweep_inference", queue="default", ignore_result=True)
def sweep_inference() -> int:
    """Retry the edits still waiting to be learned (on the beat schedule); returns how many were
    learned. Safe to overlap: each run claims its own edits."""
    from apps.memory.services import sweep_pending

    return sweep_pending()
