"""Every error Attune raises on purpose, in one catalogue (pure Python: no Django, no torch).

- :class:`AttuneError` and its kinds are the domain errors services raise: :class:`NotEnoughData`,
  :class:`Conflict`, :class:`ReferenceNotFound`, :class:`InvalidValue`. They carry data only; the
  API turns them into HTTP answers in one place (``apps.common.api.exception_handler``), web pages
  show their ``message``.
- :class:`GenerationError`: the generation errors in OpenAI's shape
  (``{"error": {"message", "type", "param", "code"}}``), of ``/v1`` and the serving process.
- :class:`ArtifactError`: a stored artifact that is missing or not what it should be.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class GenerationError(Exception):
    """A request the generation service cannot serve; ``status`` is the HTTP status to answer."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.param = param
        self.code = code

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], status: int) -> GenerationError:
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        return cls(
            str(error.get("message") or "The generation service failed."),
            status=status,
            type=str(error.get("type") or "server_error"),
            param=error.get("param"),
            code=error.get("code"),
        )


def bad_param(param: str, message: str, code: str | None = "invalid_value") -> GenerationError:
    return GenerationError(message, param=param, code=code)


def unavailable(message: str, code: str = "serving_unavailable") -> GenerationError:
    """A 503: no serving process could take the request (``model_loading``: its model is being
    prepared)."""
    return GenerationError(message, status=503, type="service_unavailable_error", code=code)


class ArtifactError(ValueError):
    """An artifact (:mod:`core.artifacts`: an adapter, a CoPL version, a model) is unknown,
    unreachable, refused (pickle, symlink, a path leaving its folder) or not what its ref says."""


class AttuneError(Exception):
    """A request a service refuses, with a message for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotEnoughData(AttuneError):
    """Too little feedback for what was asked (a fit, a training run): ``needed`` of ``what``,
    ``available`` so far. Answered 409 with ``detail``, ``needed``, ``available`` (and ``what``
    when given)."""

    def __init__(
        self, message: str, *, needed: int, available: int, what: str | None = None
    ) -> None:
        super().__init__(message)
        self.needed = needed
        self.available = available
        self.what = what


class Conflict(AttuneError):
    """An operation the object's current state does not allow. Answered 409 with ``detail``."""


class ReferenceNotFound(AttuneError):
    """A request named an object (in ``field``) that does not exist or is not the caller's.

    Answered 404 with ``{field: [message]}``: another user's object and a missing one look alike.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidValue(AttuneError, ValueError):
    """A value out of bounds (or otherwise refused) for ``field``, with one message per problem.

    Answered 400 with ``{field: messages}``, like a serializer's field error.
    """

    def __init__(self, field: str, messages: str | Sequence[str]) -> None:
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__(" ".join(self.messages))
        self.field = field
