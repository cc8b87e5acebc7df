"""Example requests for the account endpoints' OpenAPI schema."""

from __future__ import annotations

from apps.common.schema import example

NEW_TOKEN = [example("new token", {"name": "laptop"}, request_only=True)]
NEW_APP = [example("new app", {"name": "my chat app"}, request_only=True)]
