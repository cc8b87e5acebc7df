"""/healthz: the platform's state in one word for anyone, every detail for staff and monitors."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from apps.health.checks import HTTP_STATUS, report

RETRY_AFTER_S = 10


def may_see_details(request: HttpRequest) -> bool:
    """A staff session, or ``Authorization: Bearer <ATTUNE_HEALTH_TOKEN>`` (when one is set).
    Anyone else learns only the status: versions, hosts and database paths help an attacker."""
    token = settings.ATTUNE_HEALTH_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
        return True
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False  # no session to look up (and no database query for anonymous probes)
    try:
        user = request.user
        return bool(user.is_authenticated and user.is_active and user.is_staff)
    except Exception:  # the session store (the database) is down: that is /healthz's answer
        return False


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 with ``ok`` or ``degraded``; 503 with ``loading`` or ``error`` (and ``Retry-After``).
    See :mod:`apps.health.checks` for what each means."""
    found = report()
    code = HTTP_STATUS[found["status"]]
    body = found if may_see_details(request) else {"status": found["status"]}
    response = JsonResponse(body, status=code)
    if code == 503:
        response["Retry-After"] = str(RETRY_AFTER_S)
    return response
