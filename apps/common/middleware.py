"""Request bodies within the limit, and every error of ``/api`` and ``/v1`` as JSON in that API's
shape.

- :class:`BodySizeLimitMiddleware` refuses bodies over ``ATTUNE_MAX_BODY_BYTES`` with a 413 before
  anything reads them, and reads chunked bodies (``Transfer-Encoding: chunked``, no
  ``Content-Length``, as gunicorn passes them on), which Django would otherwise read as empty.
- :class:`APIErrorMiddleware` answers what no view answered: while the database is down, a 503
  with ``Retry-After`` (JSON under ``/api`` and ``/v1``, a plain page elsewhere); any other
  unexpected exception, a 500 in the API's shape (logged by Django, never a stack trace); and
  Django's own HTML errors under ``/api`` and ``/v1`` (an unknown URL's 404, a bad request's 400)
  as JSON.

``/api`` errors are DRF's ``{"detail": …}``; ``/v1`` errors OpenAI's ``{"error": {"message",
"type", "param", "code"}}`` (:class:`core.errors.GenerationError`).
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.core.signals import got_request_exception
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

from core.errors import GenerationError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 10
"""What a 503 asks clients to wait: a restarted database is back within seconds."""
OPENAI_PREFIX = "/v1/"
API_PREFIX = "/api/"
EXEMPT_PREFIXES = ("/healthz", "/static/")  # /healthz reports the database itself
JSON_TYPES = ("application/json", "application/x-ndjson", "text/event-stream")
DATABASE_DOWN = "The database is unavailable; retry shortly."

GetResponse = Callable[[HttpRequest], HttpResponse]


def error_response(
    request: HttpRequest,
    status: int,
    message: str,
    *,
    code: str | None = None,
    openai_type: str | None = None,
) -> HttpResponse | None:
    """A JSON error in the shape of the API ``request`` went to; None outside the APIs."""
    if request.path.startswith(OPENAI_PREFIX):
        kind = openai_type or ("server_error" if status >= 500 else "invalid_request_error")
        error = GenerationError(message, status=status, type=kind, code=code)
        return JsonResponse(error.as_dict(), status=status)
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": message}, status=status)
    return None


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` means the database cannot be reached (rather than a bad query)."""
    gone = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
    return isinstance(exc, gone) or (  # psycopg's own: a raw cursor (the memory copy) met it
        isinstance(exc, DatabaseError) and isinstance(exc.__cause__, OSError)
    )


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 with ``Retry-After`` while the database is down: JSON in the API's shape, else a
    plain page (rendered without a request, so nothing reads the database)."""
    response = error_response(
        request,
        503,
        DATABASE_DOWN,
        code="database_unavailable",
        openai_type="service_unavailable_error",
    )
    if response is None:
        page = loader.get_template("503.html").render({"message": DATABASE_DOWN})
        response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _too_large(request: HttpRequest, message: str) -> HttpResponse:
    response = error_response(request, 413, message, code="request_too_large")
    return response or JsonResponse({"detail": message}, status=413)


class BodySizeLimitMiddleware:
    """413 for a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``ATTUNE_MAX_BODY_BYTES``), by its
    ``Content-Length`` or, for a chunked body, by reading at most one byte more than the limit."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(request, 400, "Invalid Content-Length header.") or (
                JsonResponse({"detail": "Invalid Content-Length header."}, status=400)
            )
        if limit is not None and length > limit:
            return _too_large(
                request, f"Request body is {length} bytes; the limit is {limit} bytes."
            )
        if not request.META.get("CONTENT_LENGTH") and _is_chunked(request):
            body = request.META["wsgi.input"].read(-1 if limit is None else limit + 1)
            if limit is not None and len(body) > limit:
                return _too_large(request, f"Request body is over the limit of {limit} bytes.")
            # Django (and DRF) read a body by its Content-Length: give them one.
            request.META["CONTENT_LENGTH"] = str(len(body))
            request._stream = LimitedStream(io.BytesIO(body), len(body))  # type: ignore[attr-defined]
        return self.get_response(request)


def _is_chunked(request: HttpRequest) -> bool:
    """A chunked body the server has de-chunked and ends at the body's end (gunicorn says so
    with ``wsgi.input_terminated``; a server that does not could block a read to the end)."""
    encoding = request.META.get("HTTP_TRANSFER_ENCODING", "")
    return "chunked" in encoding.lower() and bool(request.META.get("wsgi.input_terminated"))


def _remember_exception(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """Note the exception Django is about to answer with its 500 page (sent inside ``except``)."""
    if request is not None:
        request.attune_exception = sys.exc_info()[1]  # type: ignore[attr-defined]


class APIErrorMiddleware:
    """No HTML error under ``/api`` and ``/v1``, and 503 (not 500) while the database is down.

    Place it after WhiteNoise (static files need no database) and before the session and
    authentication middleware, which read the database. Django turns an exception anywhere below
    into its 500 page (and logs it) before this middleware sees the answer; the
    ``got_request_exception`` signal tells it which exception that was.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        got_request_exception.connect(_remember_exception, dispatch_uid="attune-api-errors")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(EXEMPT_PREFIXES):
            return self.get_response(request)
        if not _database_reachable():
            return unavailable_response(request)
        response = self.get_response(request)
        exc = getattr(request, "attune_exception", None)
        if exc is not None:
            return self._for_exception(request, exc, response)
        if response.status_code >= 400 and not _is_json(response):
            return self._as_json(request, response)
        return response

    def _for_exception(
        self, request: HttpRequest, exc: BaseException, response: HttpResponse
    ) -> HttpResponse:
        if database_unavailable(exc):
            return unavailable_response(request)
        message = "The server had an error while processing your request."
        return error_response(request, 500, message) or response

    def _as_json(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.status_code == 404:
            message = f"Unknown request URL: {request.method} {request.path}."
            answer = error_response(request, 404, message, code="unknown_url")
        else:
            answer = error_response(request, response.status_code, response.reason_phrase)
        if answer is None:
            return response
        for header in ("Retry-After", "Allow", "WWW-Authenticate"):
            if header in response:
                answer[header] = response[header]
        return answer


def _database_reachable() -> bool:
    """Whether the default database answers: a connection that failed its health check is
    dropped, then one is opened. Free for a healthy request, which makes both checks anyway
    on its first query (``CONN_HEALTH_CHECKS``, persistent connections)."""
    connection = connections["default"]
    try:
        connection.close_if_health_check_failed()
        connection.ensure_connection()
    except (OperationalError, InterfaceError) as err:
        log.warning("database unavailable, answering 503: %s", err)
        return False
    return True


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith(JSON_TYPES)
