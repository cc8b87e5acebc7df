"""Reads of the web UI: one person's interactions, their feedback, and what Attune learned."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import BooleanField, Exists, Model, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from apps.accounts.models import User
from apps.adapters import selectors as adapter_selectors
from apps.adapters.models import PreferenceVector
from apps.feedback.models import Edit, Interaction, Rating
from apps.memory import selectors as memory_selectors
from apps.memory.models import MemoryEntry, PendingInference
from core.world.sources import SOURCES, make_context

SAMPLE_SEED = 7


def _has(model: type[Model]) -> Coalesce:
    """Whether the interaction has a row of ``model``, as a scalar subquery (``LIMIT 1``).

    Not ``EXISTS``: in a select list PostgreSQL may plan ``EXISTS`` as a hashed subplan that
    reads the whole table (95,000 edits at size) even under ``LIMIT 1``, because it costs the
    choice for every row of the user's history; a scalar subquery runs once per row returned."""
    flag = model.objects.filter(interaction=OuterRef("pk")).order_by().values(flag=Value(True))
    return Coalesce(Subquery(flag[:1], output_field=BooleanField()), Value(False))


def interactions(user: User) -> QuerySet[Interaction]:
    """The user's own interactions, newest first, marked with whether they were judged (without
    their embeddings, which no page shows)."""
    return (
        Interaction.objects.owned_by(user)
        .defer("embedding")
        .annotate(rated=_has(Rating), edited=_has(Edit))
    )


def interaction(user: User, pk: int) -> Interaction | None:
    return interactions(user).filter(pk=pk).first()


def rating_of(user: User, interaction_id: int) -> Rating | None:
    return Rating.objects.owned_by(user).filter(interaction_id=interaction_id).first()


def latest_edit(user: User, interaction_id: int) -> Edit | None:
    return Edit.objects.owned_by(user).filter(interaction_id=interaction_id).first()


def waiting_to_learn(user: User, edit: Edit) -> PendingInference | None:
    """The note of ``edit`` when inferring its preference failed (it is retried automatically)."""
    return memory_selectors.waiting_edits(user).filter(edit=edit, attempts__gt=0).first()


def learned_from(user: User, interaction_id: int) -> list[MemoryEntry]:
    """Memory entries learned from this interaction's edits."""
    return list(MemoryEntry.objects.owned_by(user).filter(edit__interaction_id=interaction_id))


def next_unjudged(user: User, after: Interaction | None = None) -> Interaction | None:
    """The next interaction (older than ``after``, else the newest) with no rating and no edit."""
    found = interactions(user).filter(
        ~Exists(Rating.objects.filter(interaction=OuterRef("pk"))),
        ~Exists(Edit.objects.filter(interaction=OuterRef("pk"))),
    )  # anti-joins, walked in the index's order until the first unjudged one
    if after is not None:
        found = found.filter(created_at__lte=after.created_at).exclude(pk=after.pk)
        found = found.exclude(created_at=after.created_at, pk__gt=after.pk)
    return found.first()


def memory_entries(user: User) -> QuerySet[MemoryEntry]:
    return MemoryEntry.objects.owned_by(user)


def memory_entries_shown(user: User) -> QuerySet[MemoryEntry]:
    """The user's memory entries as a page lists them: newest first, without their vectors."""
    return memory_entries(user).defer("embedding", "embedding_bits")


def memory_entry(user: User, pk: int) -> MemoryEntry | None:
    return memory_entries(user).filter(pk=pk).first()


@dataclass(frozen=True)
class Slider:
    vector: PreferenceVector
    eta: float


def sliders(user: User) -> list[Slider]:
    """One slider per active preference vector with the user's η (0 where unset)."""
    etas = adapter_selectors.etas(user)
    return [Slider(v, etas.get(v.name, 0.0)) for v in adapter_selectors.active_vectors()]


def sample_contexts() -> list[dict[str, str]]:
    """One sample context per source of the offline world, for the Ask pages' one-click fill."""
    return [
        {"source": name, "label": source.label, "text": make_context(name, SAMPLE_SEED).text}
        for name, source in SOURCES.items()
    ]
