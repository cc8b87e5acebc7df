"""The login lockout (django-axes) as people meet it, on ``/login`` and ``/admin/login/``.

Axes counts failed logins per username and address (``AXES_LOCKOUT_PARAMETERS``); past
``AXES_FAILURE_LIMIT`` its backend refuses that pair, even with the right password, for the
cool-off. Without more, the form would then say "wrong password", which is not true and sends
people to reset a password that is fine. The forms here say what happened instead, and
:func:`lockout_response` (``AXES_LOCKOUT_CALLABLE``) answers that page with 429 and
``Retry-After``. API keys never go through these forms: the lockout does not touch them.
"""

from __future__ import annotations

import math
from typing import Any

from axes.helpers import get_cool_off
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

SHOWN = "attune_lockout_shown"  # set on the request once a form has said it


def cool_off_seconds(request: HttpRequest | None) -> int:
    cool_off = get_cool_off(request)
    return math.ceil(cool_off.total_seconds()) if cool_off else 0


def lockout_message(request: HttpRequest | None) -> str:
    minutes = max(1, math.ceil(cool_off_seconds(request) / 60))
    return (
        "Too many failed log-ins for this username from your address: logging in is locked "
        f"for up to {minutes} minute{'s' if minutes != 1 else ''}. Try again later, or ask an "
        "operator to unlock it."
    )


def is_locked_out(request: HttpRequest | None) -> bool:
    return bool(getattr(request, "axes_locked_out", False))


class LockoutMessageMixin:
    """An authentication form that says "locked out" (not "wrong password") when Axes refused
    the login, or when this failure was the one that locked it."""

    request: HttpRequest | None

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()  # type: ignore[misc]
        except ValidationError:
            if not is_locked_out(self.request):
                raise
            setattr(self.request, SHOWN, True)
            raise ValidationError(lockout_message(self.request), code="locked_out") from None


class LoginForm(LockoutMessageMixin, AuthenticationForm):
    """The web UI's login form."""


class AdminLoginForm(LockoutMessageMixin, AdminAuthenticationForm):
    """The Django admin's login form (``admin.site.login_form``)."""


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: the login page as rendered (its form says why) with 429 and
    ``Retry-After``; elsewhere (a login that did not come through these forms) a plain 429."""
    if original_response is not None and getattr(request, SHOWN, False):
        response = original_response
        response.status_code = 429
    else:
        response = HttpResponse(lockout_message(request), status=429, content_type="text/plain")
    if seconds := cool_off_seconds(request):
        response["Retry-After"] = str(seconds)
    return response
