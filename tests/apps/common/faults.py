"""Views that fail on purpose (a URLconf for tests), and a session store whose database is gone.

Each view raises what a real fault raises: ``OperationalError`` for the database, anything else
for a bug. ``SESSION_ENGINE = "tests.apps.common.faults"`` makes saving a session fail, as it
does when the database stops between the view and the session middleware's save.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from apps.generation.api.views import OpenAIView
from attune.urls import urlpatterns as attune_urlpatterns

DOWN = "connection failed: No such file or directory"


def database_down(request: HttpRequest) -> HttpResponse:
    raise OperationalError(DOWN)


def bug(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


@api_view(["GET"])
@permission_classes([AllowAny])
def drf_database_down(request: Request) -> Response:
    raise OperationalError(DOWN)


@api_view(["GET"])
@permission_classes([AllowAny])
def drf_bug(request: Request) -> Response:
    raise ZeroDivisionError("a bug in a DRF view")


class OpenAIDatabaseDown(OpenAIView):
    """A ``/v1`` view whose database goes away mid-request (after the middleware's check)."""

    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise OperationalError(DOWN)


def touch_session(request: HttpRequest) -> HttpResponse:
    request.session["seen"] = True  # saved after the view, by the session middleware
    return HttpResponse("ok")


class SessionStore(DatabaseSessionStore):
    def save(self, must_create: bool = False) -> None:
        raise OperationalError(DOWN)


faults = [
    path("database-down", database_down),
    path("bug", bug),
    path("drf-database-down", drf_database_down),
    path("drf-bug", drf_bug),
    path("session", touch_session),
    path("openai-database-down", OpenAIDatabaseDown.as_view()),
]
urlpatterns = [
    path("api/faults/", include(faults)),
    path("v1/faults/", include(faults)),
    path("faults/", include(faults)),
    *attune_urlpatterns,
]
