"""A chat completion request, checked field by field as OpenAI's API checks it. Torch-free.

:func:`parse_request` reads an OpenAI ``/v1/chat/completions`` body; :func:`check` validates the
same fields when the web UI calls the service directly. Every problem raises
:class:`core.errors.GenerationError` naming the parameter (400), or 404 for an
unknown model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from apps.common.fields import printable, storable_text_problem
from core.errors import GenerationError, bad_param
from core.serving import BASE_MODEL, LAYERS, PERSONALIZED_MODEL, GenerationParams

MODELS = {
    PERSONALIZED_MODEL: "the base model personalized for the calling user (adapter, preference "
    "vectors, CIPHER memory, persona)",
    BASE_MODEL: "the same base model without any personalization",
}
ROLES = {"system", "developer", "user", "assistant"}
MAX_STOP = 4
# OpenAI parameters Attune accepts only at their neutral value (anything else is a clear 400).
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "presence_penalty": (None, 0, 0.0),
    "frequency_penalty": (None, 0, 0.0),
    "logit_bias": (None, {}),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "tools": (None, []),
    "tool_choice": (None, "none", "auto"),
    "functions": (None, []),
    "function_call": (None, "none", "auto"),
    "parallel_tool_calls": (None, True, False),
    "response_format": (None, {"type": "text"}),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "prediction": (None,),
}
IGNORED = {"user", "safety_identifier", "metadata", "store", "service_tier", "prompt_cache_key"}


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, str]]
    params: GenerationParams
    stream: bool = False
    include_usage: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, bool] = field(default_factory=dict)  # attune.layers: switches asked for


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_param(
            name, f"'{name}' must be a number between {low} and {high}.", "invalid_type"
        )
    if not low <= value <= high:
        raise bad_param(name, f"'{name}' must be between {low} and {high}; got {value}.")
    return float(value)


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_param(name, f"'{name}' must be an integer.", "invalid_type")
    if not low <= value <= high:
        raise bad_param(name, f"'{name}' must be between {low} and {high}; got {value}.")
    return value


def _storable(param: str, text: str) -> str:
    """``text``, unless the tokenizer or PostgreSQL would refuse it (NUL, lone surrogates)."""
    if problem := storable_text_problem(text):
        raise bad_param(param, problem)
    return text


def _content(index: int, content: Any) -> str:
    return _storable(f"messages[{index}].content", _content_text(index, content))


def _content_text(index: int, content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only text parts
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise bad_param(
                    f"messages[{index}].content", "Only text content parts are supported."
                )
            if not isinstance(part.get("text"), str):
                raise bad_param(f"messages[{index}].content", "A text part needs a 'text' string.")
            texts.append(part["text"])
        return "".join(texts)
    raise bad_param(
        f"messages[{index}].content", "A message's content must be a string.", "invalid_type"
    )


def check_messages(messages: Any) -> list[dict[str, str]]:
    """Messages as ``[{role, content}]`` with text content, within the size limits."""
    if not isinstance(messages, list) or not messages:
        raise bad_param("messages", "'messages' must be a non-empty array.", "invalid_type")
    if len(messages) > settings.ATTUNE_MAX_MESSAGES:
        raise bad_param(
            "messages",
            f"At most {settings.ATTUNE_MAX_MESSAGES} messages; got {len(messages)}.",
            "context_length_exceeded",
        )
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_param(f"messages[{i}]", "Each message must be an object.", "invalid_type")
        role = message.get("role")
        if role not in ROLES:
            raise bad_param(
                f"messages[{i}].role",
                f"Unsupported role {role!r}; use one of {sorted(ROLES)}.",
            )
        checked.append({"role": role, "content": _content(i, message.get("content"))})
    if not any(m["role"] == "user" for m in checked):
        raise bad_param("messages", "The messages need at least one user message.")
    total = sum(len(m["content"]) for m in checked)
    if total > settings.ATTUNE_MAX_PROMPT_CHARS:
        raise bad_param(
            "messages",
            f"The messages hold {total} characters; the limit is "
            f"{settings.ATTUNE_MAX_PROMPT_CHARS}. Shorten them.",
            "context_length_exceeded",
        )
    return checked


def check_model(model: Any) -> str:
    if not isinstance(model, str) or not model:
        raise bad_param("model", "'model' is required (see GET /v1/models).", "missing_required")
    if model not in MODELS:
        raise GenerationError(
            f"The model '{printable(model)}' does not exist or you do not have access to it "
            f"(available: {', '.join(MODELS)}).",
            status=404,
            param="model",
            code="model_not_found",
        )
    return model


def check_stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    items = [stop] if isinstance(stop, str) else stop
    if not isinstance(items, list) or not all(isinstance(s, str) and s for s in items):
        raise bad_param("stop", "'stop' must be a non-empty string or an array of them.")
    if len(items) > MAX_STOP:
        raise bad_param("stop", f"At most {MAX_STOP} stop sequences; got {len(items)}.")
    return tuple(_storable("stop", s) for s in items)


def check(
    *,
    model: Any = PERSONALIZED_MODEL,
    max_tokens: Any = None,
    temperature: Any = None,
    top_p: Any = None,
    n: Any = None,
    stop: Any = None,
    seed: Any = None,
) -> GenerationParams:
    """Validated generation parameters (None keeps :class:`GenerationParams`' default)."""
    model = check_model(model)
    limit = settings.ATTUNE_SERVING_MAX_TOKENS
    checks = {
        "max_tokens": lambda v: _integer("max_tokens", v, 1, limit),
        "temperature": lambda v: _number("temperature", v, 0, 2),
        "top_p": lambda v: _number("top_p", v, 0, 1),
        "n": lambda v: _integer("n", v, 1, settings.ATTUNE_SERVING_MAX_N),
        "seed": lambda v: _integer("seed", v, -(2**63), 2**63 - 1),
    }
    given = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "n": n,
             "seed": seed}  # fmt: skip
    values = {name: checks[name](v) for name, v in given.items() if v is not None}
    return GenerationParams(model=model, stop=check_stop(stop), **values)


def check_layers(layers: Any, param: str = "attune.layers") -> dict[str, bool]:
    """A request's layer switches ``{layer: bool}`` (any subset of :data:`LAYERS`; None: none).
    A switch can only turn a layer off on top of the user's own setting; ``true`` keeps it as
    the user has it, and out of layer arbitration's hands."""
    if layers is None:
        return {}
    if not isinstance(layers, Mapping):
        raise bad_param(
            param, f"'{param}' must be an object of layer switches, e.g. "
            '{"memory": false}.', "invalid_type",
        )  # fmt: skip
    checked = {}
    for name, value in layers.items():
        if name not in LAYERS:
            name = printable(str(name))
            raise bad_param(
                f"{param}.{name}",
                f"Unknown layer '{name}'; the layers are {', '.join(LAYERS)}.",
                "unknown_parameter",
            )
        if not isinstance(value, bool):
            raise bad_param(
                f"{param}.{name}", f"'{param}.{name}' must be true or false.", "invalid_type"
            )
        checked[name] = value
    return checked


def layers_off(layers: Mapping[str, bool]) -> tuple[str, ...]:
    """The layers a checked ``attune.layers`` turns off, in :data:`LAYERS` order."""
    return tuple(layer for layer in LAYERS if layers.get(layer) is False)


def layers_kept(layers: Mapping[str, bool]) -> tuple[str, ...]:
    """The layers a checked ``attune.layers`` keeps (``true``: arbitration may not leave them
    out; the user's own switch still wins), in :data:`LAYERS` order."""
    return tuple(layer for layer in LAYERS if layers.get(layer) is True)


def check_attune(options: Any) -> dict[str, bool]:
    """The ``attune`` object of a request (Attune's own options; OpenAI's client sends it with
    ``extra_body``): today only ``layers``. Returns the checked layer switches."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise bad_param("attune", "'attune' must be an object.", "invalid_type")
    for name in options:
        if name != "layers":
            name = printable(str(name))
            raise bad_param(
                f"attune.{name}",
                f"Unrecognized Attune option: attune.{name} (known: attune.layers).",
                "unknown_parameter",
            )
    return check_layers(options.get("layers"))


def parse_request(body: Any) -> ChatRequest:
    """A checked :class:`ChatRequest` from an OpenAI chat completion body."""
    if not isinstance(body, Mapping):
        raise GenerationError("The request body must be a JSON object.", code="invalid_json")
    known = {
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n",
        "stop", "seed", "stream", "stream_options", "attune",
    }  # fmt: skip
    for name, value in body.items():
        if name in known or name in IGNORED:
            continue
        if name in NEUTRAL:
            if value not in NEUTRAL[name]:
                raise bad_param(name, f"'{name}' is not supported by Attune.", "unsupported_value")
            continue
        name = printable(name)  # echoed: a lone surrogate would not encode
        raise bad_param(
            name, f"Unrecognized request argument supplied: {name}", "unknown_parameter"
        )
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise bad_param("stream", "'stream' must be a boolean.", "invalid_type")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad_param("stream_options", "'stream_options' must be an object.", "invalid_type")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    params = check(
        model=body.get("model"),
        max_tokens=max_tokens,
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        n=body.get("n"),
        stop=body.get("stop"),
        seed=body.get("seed"),
    )
    messages = check_messages(body.get("messages"))
    layers = check_attune(body.get("attune"))
    return ChatRequest(messages, params, stream, bool(options.get("include_usage")), layers=layers)


def models() -> list[dict[str, Any]]:
    """The model list of ``GET /v1/models``."""
    from core import config

    return [
        {
            "id": name,
            "object": "model",
            "created": 0,
            "owned_by": "attune",
            "attune": {"base_model": config.base_model_name(), "description": text},
        }
        for name, text in MODELS.items()
    ]


def message_list(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Messages given to the service directly (the web UI): checked like the API's."""
    return check_messages(list(messages))
