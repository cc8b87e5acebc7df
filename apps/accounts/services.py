"""Writes for accounts: issuing and revoking keys, end users created on first sight."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.keys import (
    APP_KEY_PREFIX,
    PERSONAL_TOKEN_PREFIX,
    digest,
    display_prefix,
    new_key,
)
from apps.accounts.models import ApiKey, ClientApp, PersonalToken, User

END_USER_ID = re.compile(r"^[A-Za-z0-9_.@:+\-]{1,128}$")
END_USER_ID_HELP = "1-128 characters: letters, digits and _ . @ : + -"
LAST_USED_RESOLUTION = timedelta(minutes=1)
K = TypeVar("K", bound=ApiKey)


@dataclass(frozen=True)
class Issued(Generic[K]):
    """A freshly issued key: the plaintext ``key`` is shown once and never stored."""

    record: K
    key: str


def issue_personal_token(user: User, name: str) -> Issued[PersonalToken]:
    key = new_key(PERSONAL_TOKEN_PREFIX)
    token = PersonalToken.objects.create(
        user=user, name=name, key_digest=digest(key), key_prefix=display_prefix(key)
    )
    return Issued(token, key)


def create_client_app(owner: User, name: str) -> Issued[ClientApp]:
    key = new_key(APP_KEY_PREFIX)
    app = ClientApp.objects.create(
        owner=owner, name=name, key_digest=digest(key), key_prefix=display_prefix(key)
    )
    return Issued(app, key)


def revoke(record: ApiKey) -> None:
    if record.revoked_at is None:
        record.revoked_at = timezone.now()
        record.save(update_fields=["revoked_at"])


def mark_used(record: ApiKey) -> None:
    """Record use, at most once a minute per key so that authentication stays read-only."""
    now = timezone.now()
    if record.last_used_at is None or now - record.last_used_at > LAST_USED_RESOLUTION:
        type(record).objects.filter(pk=record.pk).update(last_used_at=now)
        record.last_used_at = now


def end_user_for(app: ClientApp, external_id: str) -> User:
    """The app's end user named ``external_id``, created on first sight (safe under concurrency)."""
    if not END_USER_ID.match(external_id):
        raise ValueError(f"Invalid end-user id: {END_USER_ID_HELP}.")
    found = User.objects.filter(client_app=app, external_id=external_id).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            user = User(
                username=f"app{app.pk}:{external_id}", client_app=app, external_id=external_id
            )
            user.set_unusable_password()
            user.save()
            return user
    except IntegrityError:
        return User.objects.get(client_app=app, external_id=external_id)
