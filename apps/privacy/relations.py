"""What "a user's data" is, read from the models' metadata rather than listed by hand.

Every model built on :class:`~apps.common.models.OwnedModel` holds rows of one user; every foreign
key that points at such a model says, with its ``on_delete``, what deleting one of those rows does
to the rows that refer to it (delete them too, set the key to NULL, …). A model added later is
covered as soon as it subclasses ``OwnedModel``; :func:`check_erasable` refuses what the erasure in
:mod:`apps.privacy.services` could not honour, and a test runs it over every installed model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.signals import post_delete, pre_delete

from apps.common.models import OwnedModel

HANDLED = {models.CASCADE: "cascade", models.SET_NULL: "set_null", models.DO_NOTHING: "nothing"}


@dataclass(frozen=True)
class Relation:
    """A foreign key of ``model`` (its column ``column``) and what deleting its target does."""

    model: type[models.Model]
    column: str
    action: str  # "cascade", "set_null" or "nothing"; see HANDLED

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @property
    def pk_column(self) -> str:
        return self.model._meta.pk.column


def owned_models() -> list[type[OwnedModel]]:
    """Every installed model whose rows belong to a user, in a stable order (by label)."""
    found = [m for m in apps.get_models() if issubclass(m, OwnedModel) and not m._meta.proxy]
    return sorted(found, key=lambda m: m._meta.label_lower)


def _foreign_keys() -> list[tuple[type[models.Model], models.ForeignKey]]:
    """Every foreign key (one-to-one included) stored in some table, auto-created tables too."""
    found = []
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy:
            continue
        for field in model._meta.local_concrete_fields:
            if field.many_to_one or field.one_to_one:
                found.append((model, field))
    return found


@cache
def relations_to(model: type[models.Model]) -> tuple[Relation, ...]:
    """The foreign keys pointing at ``model``'s rows (by its primary key), stable order."""
    target = model._meta.concrete_model
    found = []
    for referrer, field in _foreign_keys():
        if field.remote_field.model._meta.concrete_model is not target:
            continue
        action = HANDLED.get(field.remote_field.on_delete)
        if action is None:
            raise ImproperlyConfigured(
                f"{referrer._meta.label}.{field.name}: on_delete="
                f"{field.remote_field.on_delete.__name__} is not honoured by erase_user_data"
            )
        if field.target_field != model._meta.pk:
            raise ImproperlyConfigured(
                f"{referrer._meta.label}.{field.name} points at a column other than the primary "
                f"key of {model._meta.label}; erase_user_data deletes by primary key"
            )
        found.append(Relation(referrer, field.column, action))
    return tuple(sorted(found, key=lambda r: (r.model._meta.label_lower, r.column)))


def erase_order() -> list[type[OwnedModel]]:
    """The owned models, each before the owned models it points at (children before parents).

    A user's ratings and edits then go before their interactions, and memory entries before the
    edits they were learned from, so each table is emptied through its own ``user_id`` index and
    the ``SET NULL`` and cascade statements of a parent find (almost) nothing left to do.
    """
    owned = owned_models()
    parents = {
        model: {r.model for r in relations_to(model) if r.model in owned and r.model is not model}
        for model in owned
    }  # parents[p] = the owned models pointing at p: they come first
    order: list[type[OwnedModel]] = []
    while len(order) < len(owned):
        ready = [m for m in owned if m not in order and parents[m] <= set(order)]
        if not ready:  # a cycle between owned models: any order is correct, take the rest
            ready = [m for m in owned if m not in order]
        order.append(ready[0])
    return order


def _check_no_cycle(model: type[models.Model], path: tuple[type[models.Model], ...]) -> None:
    for relation in relations_to(model):
        if relation.action != "cascade":
            continue
        if relation.model in path:
            chain = " -> ".join(m._meta.label for m in (*path, relation.model))
            raise ImproperlyConfigured(f"a cascade cycle ({chain}) is not handled by erasure")
        _check_no_cycle(relation.model, (*path, relation.model))


def check_erasable() -> list[type[models.Model]]:
    """Check that every owned model, and everything its deletion reaches, can be erased in SQL.

    Raises :class:`ImproperlyConfigured` for an ``on_delete`` other than CASCADE, SET_NULL or
    DO_NOTHING, a key to a column other than the primary key, a cascade cycle, or a
    ``pre_delete``/``post_delete`` receiver (SQL deletes send no signals). Answers every model
    whose rows an erasure may delete.
    """
    reached: list[type[models.Model]] = []
    pending: list[type[models.Model]] = list(owned_models())
    while pending:
        model = pending.pop(0)
        if model in reached:
            continue
        reached.append(model)
        _check_no_cycle(model, (model,))
        pending += [r.model for r in relations_to(model) if r.action == "cascade"]
    for model in reached:
        if pre_delete.has_listeners(model) or post_delete.has_listeners(model):
            raise ImproperlyConfigured(
                f"{model._meta.label} has a delete signal receiver, which an SQL erasure skips"
            )
    return reached
