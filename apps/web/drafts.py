"""Keeping what a person typed when their session expired mid-form.

A form POSTed without a valid session is not lost: its text fields are stashed in the (anonymous)
session under the form's name, the person is sent to the login page with ``next`` pointing back at
the page the form was on, and that page fills the form again from the stash. Django's ``login``
keeps an anonymous session's data, so the stash survives logging in.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.http import url_has_allowed_host_and_scheme

SESSION_KEY = "web_drafts"
MAX_FIELD_CHARS = 40_000
MAX_FIELDS = 20
SKIPPED = {"csrfmiddlewaretoken", "form", "return_to"}


def safe_return_to(request: HttpRequest, fallback: str) -> str:
    """The ``return_to`` the form names when it is a path on this site, else ``fallback``."""
    wanted = request.POST.get("return_to", "")
    ok = url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return wanted if wanted and ok and wanted.startswith("/") else fallback


def stash(request: HttpRequest) -> bool:
    """Keep the POSTed form's text fields under its ``form`` name; True when something was kept."""
    name = request.POST.get("form", "")[:100]
    if not name:
        return False
    fields = {
        key: request.POST.get(key, "")[:MAX_FIELD_CHARS]
        for key in list(request.POST)[:MAX_FIELDS]
        if key not in SKIPPED
    }
    drafts = request.session.get(SESSION_KEY, {})
    drafts[name] = fields
    request.session[SESSION_KEY] = drafts
    return True


def pop(request: HttpRequest, name: str) -> dict[str, str] | None:
    """The stashed fields of form ``name`` (and forget them), or None."""
    drafts = request.session.get(SESSION_KEY)
    if not drafts or name not in drafts:
        return None
    fields = drafts.pop(name)
    request.session[SESSION_KEY] = drafts
    return fields


def has_any(request: HttpRequest) -> bool:
    return bool(request.session.get(SESSION_KEY))


def login_required_keeping_draft(
    view: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse]:
    """``login_required`` that keeps a POSTed draft (see the module docstring).

    Script requests (``Accept: application/json``) get a JSON 401 naming the login page instead.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if "application/json" in request.headers.get("Accept", ""):
            if request.method == "POST":
                stash(request)
            return JsonResponse(
                {"detail": "Your session has expired. Log in again.", "login": "/login"},
                status=401,
            )
        if request.method == "POST":
            stash(request)
            return redirect_to_login(safe_return_to(request, "/"))
        return redirect_to_login(request.get_full_path())

    return wrapped
