"""API key format: a kind prefix and 43 random URL-safe characters; only the digest is stored."""

from __future__ import annotations

import hashlib
import secrets

PERSONAL_TOKEN_PREFIX = "atk_"
APP_KEY_PREFIX = "apk_"


def new_key(kind_prefix: str) -> str:
    return kind_prefix + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:12]
