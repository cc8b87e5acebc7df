from __future__ import annotations

import socket
from typing import Any

from celery import shared_task


@shared_task(name="health.echo")
def echo(value: Any) -> dict[str, Any]:
    """Round trip through the broker and a worker; used by diagnostics and tests."""
    return {"value": value, "worker_host": socket.gethostname()}
