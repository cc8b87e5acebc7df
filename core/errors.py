"""Generation errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

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


def unavailable(message: str) -> GenerationError:
    return GenerationError(
        message, status=503, type="service_unavailable_error", code="serving_unavailable"
    )


class ArtifactError(ValueError):
    """A stored artifact (a CoPL version's files) is missing, outside its store, or not what it
    should be."""
