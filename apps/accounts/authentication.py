"""``Authorization: Bearer <key>`` for personal tokens (``atk_``) and client-app keys (``apk_``).

An app key acts for one of the app's end users, named per request by the ``X-Attune-User`` header,
the ``user`` query parameter, or a ``user`` / ``safety_identifier`` field of a JSON body (as
OpenAI's API takes them). That end user is created on first sight inside the app's namespace.

Wrong keys are counted per address (:class:`apps.common.throttling.AuthFailureThrottle`): past
``ATTUNE_THROTTLE_AUTH_FAILURES`` a wrong key answers 429 with ``Retry-After`` instead of 401.
A valid key is always accepted, so guessing from an address never locks out a key's owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from apps.accounts import selectors, services
from apps.accounts.keys import APP_KEY_PREFIX
from apps.accounts.models import ClientApp, User
from apps.common.throttling import AuthFailureThrottle

END_USER_HEADER = "HTTP_X_ATTUNE_USER"
END_USER_BODY_FIELDS = ("user", "safety_identifier")


@dataclass(frozen=True)
class AppCredential:
    """``request.auth`` when a client app acts for one of its end users."""

    app: ClientApp


def named_end_user(request: Request) -> str | None:
    name = request.META.get(END_USER_HEADER) or request.query_params.get("user")
    if name:
        return name
    if request.content_type and request.content_type.startswith("application/json"):
        data = request.data
        if isinstance(data, dict):
            for field in END_USER_BODY_FIELDS:
                if isinstance(data.get(field), str) and data[field]:
                    return data[field]
    return None


class BearerKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise self._failed(request, "Expected 'Authorization: Bearer <key>'.")
        key = parts[1].decode("ascii", errors="replace")
        if key.startswith(APP_KEY_PREFIX):
            return self._as_end_user(request, key)
        token = selectors.active_token_for_key(key)
        if token is None:
            raise self._failed(request, "Invalid or revoked API key.")
        services.mark_used(token)
        return token.user, token

    def _as_end_user(self, request: Request, key: str) -> tuple[User, AppCredential]:
        app = selectors.active_app_for_key(key)
        if app is None:
            raise self._failed(request, "Invalid or revoked app key.")
        name = named_end_user(request)
        if not name:
            raise exceptions.ValidationError(
                {
                    "user": [
                        "An app key acts for an end user: name one with the X-Attune-User header, "
                        "the 'user' query parameter or a 'user' field in the JSON body."
                    ]
                }
            )
        try:
            user = services.end_user_for(app, name)
        except ValueError as err:
            raise exceptions.ValidationError({"user": [str(err)]}) from err
        services.mark_used(app)
        return user, AppCredential(app)

    @staticmethod
    def _failed(request: Request, message: str) -> exceptions.APIException:
        """The error for a wrong key: 401, or 429 once its address has failed too often."""
        wait = AuthFailureThrottle().record(request)
        if wait is None:
            return exceptions.AuthenticationFailed(message)
        return exceptions.Throttled(
            wait, detail=f"{message} Too many wrong API keys from this address."
        )

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="attune"'
