"""Reads for persona profiles."""

from __future__ import annotations

from apps.accounts.models import User
from apps.personas.models import PersonaProfile


def persona_of(user: User) -> PersonaProfile | None:
    """The user's own profile, if they have one."""
    return PersonaProfile.objects.owned_by(user).first()
