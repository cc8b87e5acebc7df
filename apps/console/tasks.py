"""Celery tasks of the console (thin wrappers over ``apps.console.selectors``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(
    name="console.refresh_cost_per_round", queue="default", acks_late=True, ignore_result=True
)
def refresh_cost_per_round(max_rounds: int) -> int:
    """Recompute the overall edit cost per round that ``/console/plots`` shows; returns how many
    rounds it has. Idempotent."""
    from apps.console.selectors import refresh_mean_cost_per_round

    return len(refresh_mean_cost_per_round(max_rounds))
