"""The serving process's HTTP face (standard library; 127.0.0.1 only by default).

``POST /internal/generate`` (the web process, with the shared serving key): JSON
``{"user_id", "messages", "params", "stream"}``; answers JSON Lines events, or an error status
with an OpenAI-style error body when the request is refused before generation starts.
``GET /healthz``: the model, backend, cache and batching figures (200), or ``loading`` with the
progress of preparing the model, or ``error`` when it could not be loaded (503).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from django.db import InterfaceError, OperationalError, close_old_connections, connections

from core.errors import GenerationError, unavailable
from core.serving import GENERATE_PATH, GenerateRequest

DATABASE_DOWN = "The database is unavailable; retry shortly."
# Django's errors, and psycopg's own from the raw cursor the memory copy reads with.
DATABASE_GONE = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)

log = logging.getLogger(__name__)
MAX_BODY = 8 * 1024 * 1024


class _Gone(Exception):
    """The web process closed the connection (its client went away)."""


class JSONHandler(BaseHTTPRequestHandler):
    """A stdlib request handler that answers JSON and logs at debug level (also the base of the
    tests' stand-in servers)."""

    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _json(self, status: int, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Handler(JSONHandler):
    server: ServingHTTPServer

    def do_GET(self) -> None:
        if self.path != "/healthz":
            self._json(404, GenerationError("Not found.", status=404).as_dict())
            return
        health = self.server.health()
        self._json(200 if health["status"] == "ok" else 503, health)

    def do_POST(self) -> None:
        if self.path != GENERATE_PATH:
            self._json(404, GenerationError("Not found.", status=404).as_dict())
            return
        given = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.server.key.encode()):
            err = GenerationError("Invalid serving key.", status=401, code="invalid_api_key")
            self._json(401, err.as_dict())
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise GenerationError("Request too large.", status=413)
            try:
                payload = json.loads(self.rfile.read(length))
            except ValueError as err:
                raise GenerationError(f"Malformed JSON: {err}") from err
            self._generate(GenerateRequest.from_payload(payload))
        except GenerationError as err:
            self._json(err.status, err.as_dict())
        except DATABASE_GONE as err:  # the database is down: not our fault
            log.warning("generation refused, the database is unavailable: %s", err)
            self._json(503, unavailable(DATABASE_DOWN, code="database_unavailable").as_dict())
        except Exception:  # before the answer started: a JSON 500, logged here
            log.exception("generation request failed before it started")
            err = GenerationError("The generation service failed.", status=500, type="server_error")
            self._json(500, err.as_dict())
        finally:
            connections.close_all()  # this thread's database connections

    def _generate(self, request: GenerateRequest) -> None:
        close_old_connections()
        service = self.server.service
        prepared = service.prepare(request)  # may refuse: answered with its status
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()

        def write(event: dict[str, Any]) -> None:
            try:
                self.wfile.write(json.dumps(event).encode() + b"\n")
                self.wfile.flush()
            except OSError as err:
                raise _Gone from err

        try:
            service.run(prepared, write)
        except _Gone:
            log.info("client of %s went away; generation cancelled", prepared.id)
        except DATABASE_GONE as err:  # it went down while the answer was stored: a 503, not ours
            log.warning("generation %s not stored, the database is gone: %s", prepared.id, err)
            with contextlib.suppress(_Gone):
                error = unavailable(DATABASE_DOWN, code="database_unavailable")
                write({"type": "error", "status": 503, **error.as_dict()})
        except Exception as err:
            log.exception("generation %s failed", prepared.id)
            with contextlib.suppress(_Gone):
                error = GenerationError(
                    f"generation failed: {type(err).__name__}", status=500, type="server_error"
                )
                write({"type": "error", "status": 500, **error.as_dict()})


class ServingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: Any, key: str) -> None:
        super().__init__(address, Handler)
        self.service = service
        self.key = key
        self.started = threading.Event()

    def health(self) -> dict[str, Any]:
        service = self.service
        if hasattr(service, "health"):  # still preparing the model (workers.serving.loading)
            return dict(service.health())
        data: dict[str, Any] = {"status": "ok", "backend": service.backend}
        data["base_model"] = service.base_model
        weights = getattr(service, "weights", None)
        if weights is not None:
            cache = weights.cache
            data["cache"] = {
                "entries": len(cache), "bytes": cache.used, "capacity_bytes": cache.capacity,
                "hits": cache.hits, "misses": cache.misses, "evictions": cache.evictions,
            }  # fmt: skip
        scheduler = getattr(service, "scheduler", None)
        if scheduler is not None:
            stats = scheduler.stats
            data["batching"] = {
                "max_batch": scheduler.max_batch, "max_wait_ms": scheduler.max_wait * 1000,
                "batches": stats.batches, "rows": stats.rows, "largest": stats.largest,
            }  # fmt: skip
        return data
