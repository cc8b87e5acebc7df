"""Tasks that exist only for tests; a test worker loads them with ``--include``."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from celery import shared_task


@shared_task(name="tests.crash_once")
def crash_once(marker: str) -> str:
    """Kill the worker process the first time (as a crash would); succeed when redelivered."""
    path = Path(marker)
    if not path.exists():
        path.write_text("crashed once")
        os.kill(os.getpid(), signal.SIGKILL)
    return "done after redelivery"
