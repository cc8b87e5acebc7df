"""Example requests and answers for the feedback endpoints' OpenAPI schema."""

from __future__ import annotations

from apps.common.schema import MALFORMED, example

WHEN = "2026-05-01T09:30:00Z"
EMBEDDED = {
    "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
    "embedding_dim": 384,
    "embedded_at": "2026-05-01T09:30:02Z",
}
PROMPT = "Summarize for the newsletter: Ghent's council voted on Monday to extend the tram line."
OUTPUT = "The Ghent city council approved an extension of the tram line on Monday."
EDITED = "Great news! Ghent is getting a longer tram line, approved on Monday."

INTERACTION_IN = {
    "prompt": PROMPT,
    "source": "news",
    "output": OUTPUT,
    "model_id": "attune/style-lm",
    "adapter_version": "u3-v2",
    "preference_coefficients": {"casual": 1.0, "emoji": -0.5},
    "memory_entry_ids": [41, 57],
    "conditioning_preference": "short sentences, playful language",
}
CHAT_IN = {
    "messages": [
        {"role": "system", "content": "You write newsletters."},
        {"role": "user", "content": PROMPT},
    ],
    "source": "news",
    "output": OUTPUT,
}
INTERACTION_OUT = {
    "id": 12,
    "user": 3,
    "messages": [],
    **INTERACTION_IN,
    "created_at": WHEN,
    **EMBEDDED,
}
INTERACTION = [
    example("prompt", INTERACTION_IN, request_only=True),
    example("chat messages", CHAT_IN, request_only=True),
    example("interaction", INTERACTION_OUT, response_only=True),
]
INTERACTION_ERRORS = {
    "missing_prompt": {"prompt": ["Give a prompt or chat messages."]},
    "too_long": {"output": ["Ensure this field has no more than 8000 characters."]},
    **MALFORMED,
}

RATING_OUT = {
    "id": 7,
    "user": 3,
    "interaction": 12,
    "thumbs": None,
    "stars": 4,
    "comment": "Good, a bit long.",
    "created_at": WHEN,
    "updated_at": WHEN,
}
RATING = [
    example(
        "stars", {"interaction": 12, "stars": 4, "comment": "Good, a bit long."}, request_only=True
    ),
    example("thumbs", {"interaction": 12, "thumbs": "up"}, request_only=True),
    example("rating", RATING_OUT, response_only=True),
]
RATING_UPDATE = [
    example("switch to thumbs", {"thumbs": "down"}, request_only=True),
    example("rating", {**RATING_OUT, "thumbs": "down", "stars": None}, response_only=True),
]
RATING_ERRORS = {
    "out_of_range": {"stars": ["Ensure this value is less than or equal to 5."]},
    "both": {"stars": ["Give thumbs or stars, not both."]},
    **MALFORMED,
}
UNKNOWN_INTERACTION = {"unknown_interaction": {"interaction": ["You have no interaction 999."]}}

EDIT_OUT = {
    "id": 5,
    "user": 3,
    "interaction": 12,
    "original": OUTPUT,
    "edited": EDITED,
    "distance": 11,
    "diff": [
        {"op": "delete", "text": "The"},
        {"op": "insert", "text": "Great news!"},
        {"op": "equal", "text": "Ghent"},
        {"op": "delete", "text": "city council"},
        {"op": "insert", "text": "is getting a longer tram line,"},
        {"op": "equal", "text": "approved"},
        {"op": "delete", "text": "an extension of the tram line"},
        {"op": "equal", "text": "on Monday."},
    ],
    "is_noop": False,
    "created_at": WHEN,
}
EDIT = [
    example("edit of the output", {"interaction": 12, "edited": EDITED}, request_only=True),
    example(
        "edit of a given original",
        {"interaction": 12, "original": OUTPUT, "edited": EDITED},
        request_only=True,
    ),
    example("edit", EDIT_OUT, response_only=True),
]
EDIT_ERRORS = {"missing_edited": {"edited": ["This field is required."]}, **MALFORMED}

COMPARISON_OUT = {
    "id": 9,
    "user": 3,
    "prompt": PROMPT,
    "source": "news",
    "response_a": OUTPUT,
    "response_b": EDITED,
    "interaction_a": None,
    "interaction_b": None,
    "choice": "b",
    "created_at": WHEN,
    "updated_at": WHEN,
    **EMBEDDED,
}
COMPARISON = [
    example(
        "texts",
        {
            "prompt": PROMPT,
            "source": "news",
            "response_a": OUTPUT,
            "response_b": EDITED,
            "choice": "b",
        },
        request_only=True,
    ),
    example(
        "interactions",
        {"interaction_a": 12, "interaction_b": 13, "choice": "tie"},
        request_only=True,
    ),
    example("comparison", COMPARISON_OUT, response_only=True),
]
COMPARISON_UPDATE = [
    example("change of mind", {"choice": "a"}, request_only=True),
    example("comparison", {**COMPARISON_OUT, "choice": "a"}, response_only=True),
]
COMPARISON_ERRORS = {
    "missing_response": {"response_b": ["Give response_b or interaction_b."]},
    "bad_choice": {"choice": ['"c" is not a valid choice.']},
    **MALFORMED,
}

DPO_JSONL = (
    f'{{"prompt": "{PROMPT}", "chosen": "{EDITED}", "rejected": "{OUTPUT}"}}\n'
    '{"prompt": "Greet the team.", "chosen": "Hi all!", "rejected": "Dear colleagues,"}\n'
)
KTO_JSONL = (
    f'{{"prompt": "{PROMPT}", "completion": "{OUTPUT}", "label": true}}\n'
    f'{{"prompt": "{PROMPT}", "completion": "{EDITED}", "label": false}}\n'
)
BAD_FILTER = {"bad_date": {"created_after": ["Enter a valid date/time."]}}
