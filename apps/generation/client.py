"""The web side's connection to the serving process (standard library HTTP; torch-free).

The serving process (``python -m workers.serving``; ``./attune run`` starts it) listens on
``ATTUNE_SERVING_URL`` (default ``http://127.0.0.1:8300``). A request is one POST to
``/internal/generate`` carrying the already authenticated user's id; the answer is JSON Lines
events (``start``, ``delta``, ``done``, or ``error``), or an error status with an OpenAI-style
error body. The shared key ``ATTUNE_SERVING_KEY`` (derived from ``SECRET_KEY`` unless set)
proves the caller is Attune's web process.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from core.errors import GenerationError, unavailable
from core.serving import GENERATE_PATH, GenerateRequest, serving_key


class EventStream:
    """An open generation: iterate for its events; ``close()`` cancels it."""

    def __init__(self, connection: http.client.HTTPConnection, response: Any) -> None:
        self._connection = connection
        self._response = response

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for line in self._response:
                if line.strip():
                    yield json.loads(line)
        except (OSError, http.client.HTTPException, ValueError) as err:
            raise unavailable(f"The generation service stopped mid-answer: {err}") from err
        finally:
            self.close()

    def close(self) -> None:
        self._connection.close()


def open_stream(request: GenerateRequest) -> EventStream:
    """Send one generation to the serving process; raises :class:`GenerationError` when it
    refuses the request (its status and message) or cannot be reached (503)."""
    url = urlsplit(settings.ATTUNE_SERVING_URL)
    connection = http.client.HTTPConnection(
        url.hostname or "127.0.0.1", url.port or 80, timeout=settings.ATTUNE_SERVING_TIMEOUT
    )
    body = json.dumps(request.to_payload()).encode()
    key = serving_key(settings.SECRET_KEY, settings.ATTUNE_SERVING_KEY)
    try:
        connection.request(
            "POST",
            GENERATE_PATH,
            body=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {key}",
            },
        )
        response = connection.getresponse()
    except (TimeoutError, OSError, http.client.HTTPException) as err:
        connection.close()
        raise unavailable(
            f"The generation service at {settings.ATTUNE_SERVING_URL} is not reachable ({err}); "
            "it starts with './attune run' (or 'python -m workers.serving')."
        ) from err
    if response.status != 200:
        try:
            data = json.loads(response.read() or b"{}")
        except ValueError:
            data = {}
        connection.close()
        if response.status == 401:  # the serving key, not the caller's: a deployment problem
            raise GenerationError(
                "The web and serving processes do not share ATTUNE_SERVING_KEY.",
                status=503,
                type="service_unavailable_error",
                code="serving_misconfigured",
            )
        raise GenerationError.from_dict(data, response.status)
    return EventStream(connection, response)


def status() -> dict[str, Any] | None:
    """The serving process's ``/healthz`` answer, or None when it is not reachable."""
    url = urlsplit(settings.ATTUNE_SERVING_URL)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=3)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        return json.loads(response.read()) if response.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()
