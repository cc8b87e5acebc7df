"""Example requests and answers for the adapter endpoints' OpenAPI schema."""

from __future__ import annotations

from apps.common.schema import MALFORMED, example

ETAS = [example("brief bullets", {"coefficients": {"format-bullets-vs-prose": 1.0}})]
BAD_ETAS = {
    "unknown_vector": {"coefficients": ["unknown preference vector 'nope'"]},
    "too_large": {
        "coefficients": [
            "format-bullets-vs-prose: |η| must be at most 2.0 (larger values break the model)"
        ]
    },
    **MALFORMED,
}
TOO_FEW_PAIRS = {
    "too_few_pairs": {
        "detail": "A fit needs at least 8 preference pairs; this user has 3. …",
        "needed": 8,
        "available": 3,
    }
}
NO_ACTIVE_ADAPTER = {"none": {"detail": "There is no active adapter to roll back."}}
VECTOR_FIT = [example("one dimension", {"dimension": "format-bullets-vs-prose"}, request_only=True)]
BAD_DIMENSION = {
    "unknown_dimension": {
        "dimension": ["choose one of ['emoji-yes-vs-no', 'format-bullets-vs-prose', …]"]
    },
    **MALFORMED,
}
