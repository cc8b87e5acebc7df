"""Example answers for the CoPL endpoints' OpenAPI schema."""

from __future__ import annotations

from apps.common.schema import example

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
MAP_POINT = [
    example(
        "a page of points",
        {"user_id": 1047, "username": "ada", "client_app_id": None, "expert": 3,
         "x": 0.412871, "y": -0.087305},
        response_only=True,
    )
]  # fmt: skip
MAP_NEXT = "https://attune.example.org/api/collab/versions/1/map?limit=1000&offset=1000"
