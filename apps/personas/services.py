"""Writes for persona profiles: set, change, delete; a changed profile is embedded again."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.accounts.models import User
from apps.common.embeddings import schedule_embedding
from apps.personas.models import PersonaProfile


@transaction.atomic
def set_persona(
    user: User, *, text: str = "", attributes: dict[str, Any] | None = None
) -> tuple[PersonaProfile, bool]:
    """Create or replace the user's profile; return it and whether it is new."""
    persona, created = PersonaProfile.objects.select_for_update().get_or_create(user=user)
    persona.text = text
    persona.attributes = attributes or {}
    persona.clear_embedding()
    persona.save()
    schedule_embedding(PersonaProfile)
    return persona, created


@transaction.atomic
def update_persona(persona: PersonaProfile, **changes: Any) -> PersonaProfile:
    """Change the profile's ``text`` and/or ``attributes``; a changed profile is embedded again."""
    changed = [field for field, value in changes.items() if getattr(persona, field) != value]
    if not changed:
        return persona
    for field in changed:
        setattr(persona, field, changes[field])
    persona.clear_embedding()
    persona.save()
    schedule_embedding(PersonaProfile)
    return persona


def delete_persona(persona: PersonaProfile) -> None:
    """Hard-delete the profile and its embedding."""
    persona.delete()
