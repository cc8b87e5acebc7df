"""Reads for feedback: ownership look-ups and the TRL-ready export rows.

Export rows follow TRL's dataset formats: DPO's ``{prompt, chosen, rejected}`` (an edit prefers
the edited text to the original; a comparison its chosen response; no-op edits and ties say
nothing and are left out) and KTO's ``{prompt, completion, label}`` (thumbs up or 4-5 stars is
desirable, thumbs down or 1-2 stars undesirable, 3 stars is left out).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Max, QuerySet

from apps.accounts.models import User
from apps.feedback.models import Comparison, Edit, Interaction, Rating

EXPORT_CHUNK = 500
KTO_DESIRABLE_STARS = 4
KTO_UNDESIRABLE_STARS = 2


@dataclass(frozen=True)
class Cutoffs:
    """The newest feedback ids a training run may use (so a retried run sees the same data)."""

    edit: int
    comparison: int
    rating: int


def newest_feedback(user: User | None = None) -> Cutoffs:
    """The newest edit, comparison and rating ids now: the user's, or everyone's."""

    def newest(model: type[Edit | Comparison | Rating]) -> int:
        rows = model.objects.all() if user is None else model.objects.filter(user=user)
        return rows.aggregate(m=Max("id"))["m"] or 0

    return Cutoffs(newest(Edit), newest(Comparison), newest(Rating))


def owned_interactions(user: User) -> QuerySet[Interaction]:
    return Interaction.objects.owned_by(user)


def owned_interaction_output(user: User, interaction_id: int) -> str | None:
    """The output of the caller's interaction ``interaction_id``; None if there is none."""
    return (
        owned_interactions(user).filter(pk=interaction_id).values_list("output", flat=True).first()
    )


def dpo_rows(edits: QuerySet[Edit], comparisons: QuerySet[Comparison]) -> Iterator[dict[str, str]]:
    """DPO pairs: from edits (edited is chosen, original rejected), then from comparisons."""
    edit_pairs = (
        edits.exclude(distance=0)
        .order_by("created_at", "id")
        .values_list("interaction__prompt", "edited", "original")
    )
    for prompt, chosen, rejected in edit_pairs.iterator(chunk_size=EXPORT_CHUNK):
        yield {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    choices = (
        comparisons.exclude(choice=Comparison.Choice.TIE)
        .order_by("created_at", "id")
        .values_list("prompt", "response_a", "response_b", "choice")
    )
    for prompt, a, b, choice in choices.iterator(chunk_size=EXPORT_CHUNK):
        chosen, rejected = (a, b) if choice == Comparison.Choice.A else (b, a)
        yield {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def kto_label(thumbs_up: bool | None, stars: int | None) -> bool | None:
    """Whether a rating marks its completion desirable; None when it says neither (3 stars)."""
    if thumbs_up is not None:
        return thumbs_up
    if stars is not None and stars >= KTO_DESIRABLE_STARS:
        return True
    if stars is not None and stars <= KTO_UNDESIRABLE_STARS:
        return False
    return None


def kto_rows(ratings: QuerySet[Rating]) -> Iterator[dict[str, str | bool]]:
    """KTO examples from ratings: the interaction's prompt and output, and the rating's label."""
    rows = ratings.order_by("created_at", "id").values_list(
        "interaction__prompt", "interaction__output", "thumbs_up", "stars"
    )
    for prompt, completion, thumbs_up, stars in rows.iterator(chunk_size=EXPORT_CHUNK):
        label = kto_label(thumbs_up, stars)
        if label is not None:
            yield {"prompt": prompt, "completion": completion, "label": label}
