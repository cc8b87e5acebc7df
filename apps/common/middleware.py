"""Refuse oversized request bodies with a JSON 413 before anything reads them.

Under ``/v1/`` (the OpenAI-compatible API) the error has OpenAI's shape, so its clients read it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class BodySizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header."}, status=400)
        if limit is not None and length > limit:
            message = f"Request body is {length} bytes; the limit is {limit} bytes."
            if request.path.startswith("/v1/"):
                error = {"message": message, "type": "invalid_request_error", "param": None}
                return JsonResponse({"error": {**error, "code": "request_too_large"}}, status=413)
            return JsonResponse({"detail": message}, status=413)
        return self.get_response(request)
