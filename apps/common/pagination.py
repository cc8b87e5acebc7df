"""Limit/offset paging for every list of the API, with a ceiling on the page size.

``?limit=`` beyond ``ATTUNE_MAX_PAGE_SIZE`` answers that many items (not an error, as DRF's
``max_limit`` does), so one request can never ask the database for a whole table; ``next``
links on to the rest. The ceiling is read per request, so a deployment (or a test) changes it
in settings alone.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import pagination


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    @property
    def max_limit(self) -> int:  # type: ignore[override]
        return settings.ATTUNE_MAX_PAGE_SIZE

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["description"] = (
                    f"Number of results to return per page (at most {self.max_limit}; "
                    "a larger limit answers that many)."
                )
        return parameters
