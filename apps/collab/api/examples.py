"""Example answers for the CoPL endpoints' OpenAPI schema."""

from __future__ import annotations

NOT_ENOUGH = {
    "too_few_pairs": {
        "detail": "Training CoPL needs at least 64 preference pairs; there are 12. …",
        "needed": 64,
        "available": 12,
        "what": "preference pairs",
    }
}
NOT_ACTIVATABLE = {
    "conflict": {"detail": "Only a trained version can be activated; copl-v3 is failed."}
}
BAD_QUERY = {"too_many": {"k": ["Ensure this value is less than or equal to 100."]}}
