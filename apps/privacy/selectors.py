"""Reads for a user's data as a whole: every row of every owned model, for export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.db import models
from pgvector.django import VectorField

from apps.accounts.models import User
from apps.common.models import OwnedModel

ACCOUNT_FIELDS = ["id", "username", "email", "external_id", "client_app_id", "date_joined"]
EXPORT_CHUNK = 500


def owned_models() -> list[type[OwnedModel]]:
    """Every installed model whose rows belong to a user, in a stable order.

    Apps added later (memory entries, adapters, …) are covered as soon as their models subclass
    :class:`OwnedModel`.
    """
    found = [m for m in apps.get_models() if issubclass(m, OwnedModel)]
    return sorted(found, key=lambda m: m._meta.label_lower)


def _exported_columns(model: type[models.Model]) -> list[str]:
    """Columns a person gets back: everything but derived vectors."""
    return [
        field.attname for field in model._meta.concrete_fields if not isinstance(field, VectorField)
    ]


def user_data_records(user: User) -> Iterator[dict[str, Any]]:
    """The user's account facts, then each row they own as ``{"model": label, "fields": {…}}``."""
    account = User.objects.filter(pk=user.pk).values(*ACCOUNT_FIELDS).get()
    yield {"model": User._meta.label_lower, "fields": account}
    for model in owned_models():
        rows = (
            model.objects.filter(user=user)
            .order_by("pk")
            .values(*_exported_columns(model))
            .iterator(chunk_size=EXPORT_CHUNK)
        )
        for row in rows:
            yield {"model": model._meta.label_lower, "fields": row}
