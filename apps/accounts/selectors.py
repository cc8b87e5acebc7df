"""Reads for accounts: key look-ups used by authentication, and listings scoped to their owner."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.keys import digest
from apps.accounts.models import ClientApp, PersonalToken, User


def active_token_for_key(key: str) -> PersonalToken | None:
    return (
        PersonalToken.objects.select_related("user")
        .filter(key_digest=digest(key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )


def active_app_for_key(key: str) -> ClientApp | None:
    return (
        ClientApp.objects.select_related("owner")
        .filter(key_digest=digest(key), revoked_at__isnull=True, owner__is_active=True)
        .first()
    )


def tokens_of(user: User) -> QuerySet[PersonalToken]:
    return PersonalToken.objects.filter(user=user)


def apps_of(user: User) -> QuerySet[ClientApp]:
    return ClientApp.objects.filter(owner=user)
