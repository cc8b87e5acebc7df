"""Demo logins for a fresh local install: a staff operator and an ordinary user."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.db import transaction

from apps.accounts import services
from apps.accounts.models import User

DEMO_USERS = (("admin", True), ("demo", False))


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    token: str
    is_staff: bool


@transaction.atomic
def ensure_demo_users() -> list[DemoLogin]:
    """Create the demo users that do not exist yet; return their logins (shown this once only)."""
    created = []
    for username, staff in DEMO_USERS:
        if User.objects.filter(username=username).exists():
            continue
        password = secrets.token_urlsafe(12)
        user = User.objects.create_user(
            username=username, password=password, is_staff=staff, is_superuser=staff
        )
        issued = services.issue_personal_token(user, "demo")
        created.append(DemoLogin(username, password, issued.key, staff))
    return created
