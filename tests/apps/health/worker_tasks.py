"""A task for the round-trip test's worker (loaded with ``--include``)."""

from __future__ import annotations

import time

from celery import shared_task


@shared_task(name="tests.health.hold")
def hold(seconds: float) -> str:
    """Keep the pool process busy, as a long fit would."""
    time.sleep(seconds)
    return "held"
