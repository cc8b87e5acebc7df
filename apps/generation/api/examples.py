"""OpenAPI documentation of the OpenAI-compatible endpoints: shapes and examples."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from apps.common.schema import example

CHAT_REQUEST = {
    "model": "attune",
    "messages": [
        {"role": "user", "content": "Summarize the following news item.\n\nThe city council..."}
    ],
    "max_tokens": 128,
    "temperature": 0.7,
    "n": 1,
    "stream": False,
}
CHAT_RESPONSE = {
    "id": "chatcmpl-4f1c2b0e9d8a4c51a1b2c3d4e5f60718",
    "object": "chat.completion",
    "created": 1795000000,
    "model": "attune",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "- The council approved ...",
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "stop",
            "interaction_id": 42,
        }
    ],
    "usage": {"prompt_tokens": 61, "completion_tokens": 34, "total_tokens": 95},
    "system_fingerprint": None,
    "attune": {
        "interaction_ids": [42],
        "personalized": True,
        "adapter_version": "user-7-v2",
        "preference_coefficients": {"format-bullets-vs-prose": 0.8},
        "memory_entry_ids": [311, 298],
        "conditioning_preference": "bullet points, brief",
        "persona": True,
        "layers": {"applied": ["memory", "persona", "adapter"], "off": {"vectors": "request"}},
        "reranked": False,
        "ranking": None,
        "scores": None,
        "backend": "local",
        "base_model": "attune/style-lm",
        "context_cut": None,
        "memory_degraded": None,
    },
}
CHAT_WITHOUT_LAYERS = {
    **CHAT_REQUEST,
    "attune": {"layers": {"vectors": False}},  # openai client: extra_body={"attune": {...}}
}
BAD_LAYER = {
    "error": {
        "message": "'attune.layers.memory' must be true or false.",
        "type": "invalid_request_error",
        "param": "attune.layers.memory",
        "code": "invalid_type",
    }
}
ERROR = {
    "error": {
        "message": "The model 'gpt-9' does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
}
CHAT = [
    example("chat", CHAT_REQUEST, request_only=True),
    example(
        "chat without a layer",
        CHAT_WITHOUT_LAYERS,
        request_only=True,
        description="`attune.layers` turns personalization layers (memory, persona, adapter, "
        "vectors) off for this request, on top of the user's own switches (/api/layers).",
    ),
    example("answer", CHAT_RESPONSE, response_only=True),
]
CHAT_REQUEST_SCHEMA = OpenApiTypes.OBJECT
CHAT_RESPONSE_SCHEMA = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="A chat.completion object, or with stream=true server-sent chat.completion.chunk "
    "events ending 'data: [DONE]'. Each choice carries the interaction_id to rate or edit.",
)
ERROR_SCHEMA = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="An OpenAI-style error.",
    examples=[OpenApiExample("error", value=ERROR)],
)
BAD_REQUEST_SCHEMA = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="An OpenAI-style error naming the parameter at fault (`param`).",
    examples=[OpenApiExample("bad attune option", value=BAD_LAYER)],
)
MODELS_SCHEMA = OpenApiResponse(OpenApiTypes.OBJECT, description="{object: list, data: [model]}")
MODEL_SCHEMA = OpenApiResponse(OpenApiTypes.OBJECT, description="One model object.")
