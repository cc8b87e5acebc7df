"""OpenAI-compatible endpoints: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Authentication is Attune's bearer key (a personal ``atk_`` token, or an app key ``apk_`` with the
end user named by ``user`` / ``safety_identifier``); personalization follows that user. Every
error is OpenAI's JSON shape ``{"error": {"message", "type", "param", "code"}}``; refusals for fair
use (rate limits, too many generations at once) carry ``Retry-After``. Responses carry
the ids of the stored interactions (``choices[i].interaction_id`` and
``attune.interaction_ids``) for ratings and edits (``/api/ratings``, ``/api/edits``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from apps.common.middleware import database_unavailable, unavailable_response
from apps.common.throttling import GENERATION_THROTTLES, rate_limited
from apps.generation import params, services
from apps.generation.api import examples as ex
from core.errors import GenerationError

log = logging.getLogger(__name__)


def openai_error(exc: Exception) -> GenerationError:
    """Any exception of a request as an OpenAI-style error (never a bare 500 page)."""
    if isinstance(exc, GenerationError):
        return exc
    if isinstance(exc, exceptions.NotAuthenticated):
        return GenerationError(
            "You didn't provide an API key. Send 'Authorization: Bearer <key>' with a personal "
            "token or an app key.",
            status=401,
            code="missing_api_key",
        )
    if isinstance(exc, exceptions.AuthenticationFailed):
        return GenerationError(str(exc.detail), status=401, code="invalid_api_key")
    if isinstance(exc, exceptions.ValidationError):  # an app key without an end user
        detail = exc.detail if isinstance(exc.detail, dict) else {"": exc.detail}
        field, messages = next(iter(detail.items()))
        message = messages[0] if isinstance(messages, list) and messages else str(messages)
        return GenerationError(str(message), param=field or None, code="invalid_value")
    if isinstance(exc, exceptions.ParseError):
        return GenerationError(
            f"We could not parse the JSON body: {exc.detail}", code="invalid_json"
        )
    if isinstance(exc, exceptions.Throttled):  # a rate, or wrong keys from this address
        return rate_limited(f"Rate limit reached: {exc.detail}", exc.wait or 1)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return GenerationError(str(exc.detail), status=415, code="unsupported_media_type")
    if isinstance(exc, exceptions.APIException):
        return GenerationError(str(exc.detail), status=exc.status_code, code=exc.default_code)
    return GenerationError(
        "The server had an error while processing your request.", status=500, type="server_error"
    )


SERVING_RETRY_AFTER_SECONDS = 5  # a serving process restarts and loads its model in seconds


class OpenAIView(APIView):
    """Answers every error in OpenAI's shape."""

    def handle_exception(self, exc: Exception) -> Response:
        if database_unavailable(exc):  # it went down mid-request: 503 + Retry-After, as before it
            return unavailable_response(self.request)  # type: ignore[return-value]
        error = openai_error(exc)
        if error.status >= 500 and not isinstance(exc, GenerationError):
            log.error("generation API failed", exc_info=exc)
        response = Response(error.as_dict(), status=error.status)
        if error.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="attune"'
        retry_after = getattr(error, "retry_after", None)
        if retry_after is None and error.status == 503:  # serving restarting or loading its model
            retry_after = SERVING_RETRY_AFTER_SECONDS
        if retry_after:
            response["Retry-After"] = str(retry_after)
        return response


def _message_choice(choice: services.Choice) -> dict[str, Any]:
    return {
        "index": choice.index,
        "message": {"role": "assistant", "content": choice.text, "refusal": None},
        "logprobs": None,
        "finish_reason": choice.finish_reason,
        "interaction_id": choice.interaction_id,
    }


def completion_body(completion: services.Completion) -> dict[str, Any]:
    return {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [_message_choice(c) for c in completion.choices],
        "usage": completion.usage,
        "system_fingerprint": None,
        "attune": completion.attune,
    }


def _sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


def sse_chunks(stream: services.CompletionStream, include_usage: bool) -> Iterator[bytes]:
    """The OpenAI chunk stream of a generation, ending ``data: [DONE]``."""
    head: dict[str, Any] = {}

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {**head, "object": "chat.completion.chunk", "choices": choices, **extra}

    try:
        for event in stream:
            if isinstance(event, services.Started):
                head = {"id": event.id, "created": event.created, "model": event.model}
                head["system_fingerprint"] = None
                yield _sse(
                    chunk(
                        [
                            {"index": i, "delta": {"role": "assistant", "content": ""},
                             "logprobs": None, "finish_reason": None}
                            for i in range(event.n)
                        ]
                    )
                )  # fmt: skip
            elif isinstance(event, services.Delta):
                yield _sse(
                    chunk([{"index": event.index, "delta": {"content": event.text},
                            "logprobs": None, "finish_reason": None}])
                )  # fmt: skip
            else:
                finals = [
                    {"index": c.index, "delta": {}, "logprobs": None,
                     "finish_reason": c.finish_reason, "interaction_id": c.interaction_id}
                    for c in event.choices
                ]  # fmt: skip
                yield _sse(chunk(finals, attune=event.attune))
                if include_usage:
                    yield _sse(chunk([], usage=event.usage))
        yield _sse("[DONE]")
    except GenerationError as err:  # after the headers: an error event (as OpenAI streams it)
        yield _sse(err.as_dict())
    finally:
        stream.close()


class SSEBody:
    """The body of a streamed answer. Django closes it when the response is closed, even one
    never iterated (the client left first): that cancels the generation and frees its slots."""

    def __init__(self, stream: services.CompletionStream, include_usage: bool) -> None:
        self._stream = stream
        self._chunks = sse_chunks(stream, include_usage)

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self._chunks.close()
        self._stream.close()


class ChatCompletionsView(OpenAIView):
    # stricter rates for generation, on top of the API's
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, *GENERATION_THROTTLES]

    @extend_schema(
        operation_id="create_chat_completion",
        summary="Create a chat completion (OpenAI-compatible, personalized for the user)",
        request=ex.CHAT_REQUEST_SCHEMA,
        responses={200: ex.CHAT_RESPONSE_SCHEMA, 400: ex.BAD_REQUEST_SCHEMA, 401: ex.ERROR_SCHEMA,
                   404: ex.ERROR_SCHEMA, 429: ex.ERROR_SCHEMA, 503: ex.ERROR_SCHEMA},
        examples=ex.CHAT,
    )  # fmt: skip
    def post(self, request: Request) -> Response | StreamingHttpResponse:
        if not (request.content_type or "").startswith("application/json"):
            raise GenerationError(
                "Send the request as JSON (Content-Type: application/json).",
                code="invalid_content_type",
            )
        chat = params.parse_request(request.data)
        p = chat.params
        options = {
            "model": p.model, "max_tokens": p.max_tokens, "temperature": p.temperature,
            "top_p": p.top_p, "n": p.n, "stop": list(p.stop) or None, "seed": p.seed,
            "layers": chat.layers or None,
        }  # fmt: skip
        if not chat.stream:
            completion = services.generate(request.user, chat.messages, **options)
            return Response(completion_body(completion), status=status.HTTP_200_OK)
        stream = services.generate_stream(request.user, chat.messages, **options)
        response = StreamingHttpResponse(
            SSEBody(stream, chat.include_usage), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response


class ModelsView(OpenAIView):
    @extend_schema(
        operation_id="list_models",
        summary="List the models (OpenAI-compatible)",
        responses={200: ex.MODELS_SCHEMA},
    )
    def get(self, request: Request) -> Response:
        return Response({"object": "list", "data": params.models()})


class ModelView(OpenAIView):
    @extend_schema(
        operation_id="retrieve_model",
        summary="Read one model",
        responses={200: ex.MODEL_SCHEMA, 404: ex.ERROR_SCHEMA},
    )
    def get(self, request: Request, model: str) -> Response:
        for item in params.models():
            if item["id"] == model:
                return Response(item)
        params.check_model(model)  # raises the 404
        raise AssertionError("unreachable")
