"""Writes for feedback: interactions, ratings (one per user and interaction), edits, comparisons.

Ratings and edits name the interaction they judge; one that does not exist or is not the caller's
raises :class:`core.errors.ReferenceNotFound` and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.adapters import etas
from apps.adapters.services import schedule_fit_check
from apps.common.embeddings import schedule_embedding
from apps.feedback import selectors
from apps.feedback.models import Comparison, Edit, Interaction, Rating
from apps.memory.services import schedule_inference
from core.errors import ReferenceNotFound
from core.text import DiffOp, word_diff, word_levenshtein, words


def flatten_messages(messages: Sequence[dict[str, str]]) -> str:
    """The prompt text of chat ``messages``: a lone user message as is, else ``role: content``."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


@transaction.atomic
def create_interaction(
    user: User,
    *,
    output: str,
    prompt: str = "",
    messages: Sequence[dict[str, str]] = (),
    source: str = "",
    model_id: str = "",
    adapter_version: str = "",
    preference_coefficients: dict[str, float] | None = None,
    memory_entry_ids: Sequence[int] = (),
    conditioning_preference: str = "",
    layers: Sequence[str] = (),
    embedding: Sequence[float] = (),
) -> Interaction:
    """Store one generation; its prompt is embedded by a worker after commit, unless
    ``embedding`` is the prompt's already (``ATTUNE_EMBEDDING_MODEL``'s, as the serving process
    computes it for memory retrieval)."""
    embedded = (
        {
            "embedding": list(embedding),
            "embedding_model": settings.ATTUNE_EMBEDDING_MODEL,
            "embedding_dim": len(embedding),
            "embedded_at": timezone.now(),
        }
        if embedding
        else {}
    )
    interaction = Interaction.objects.create(
        user=user,
        prompt=prompt or flatten_messages(messages),
        messages=list(messages),
        source=source,
        output=output,
        model_id=model_id,
        adapter_version=adapter_version,
        preference_coefficients=preference_coefficients or {},
        memory_entry_ids=list(memory_entry_ids),
        conditioning_preference=conditioning_preference,
        layers=list(layers),
        **embedded,
    )
    if not embedded:
        schedule_embedding(Interaction)
    return interaction


def _unknown_interaction(field: str, interaction_id: int | None) -> ReferenceNotFound:
    return ReferenceNotFound(field, f"You have no interaction {interaction_id}.")


@contextmanager
def _interactions_must_exist(**ids: int | None) -> Iterator[None]:
    """Answer "unknown interaction" when one named in ``ids`` (field=id) vanished mid-write.

    An interaction deleted between the ownership check and the insert fails the foreign key;
    that is the caller's unknown reference, not a server error.
    """
    try:
        yield
    except IntegrityError as err:
        if not isinstance(err.__cause__, psycopg.errors.ForeignKeyViolation):
            raise
        constraint = err.__cause__.diag.constraint_name or ""
        field = next((f for f in ids if f in constraint), next(iter(ids)))
        raise _unknown_interaction(field, ids[field]) from err


_RATING_TABLE = Rating._meta.db_table
_INTERACTION_TABLE = Interaction._meta.db_table
# The rating it replaces (if any) and the output it judges come back too, for the η evidence;
# same-user writers take turns (apps.adapters.etas.hold), so "before" is what it replaces.
_UPSERT_RATING = f"""
WITH target AS (
    SELECT i.id, i.user_id, CASE WHEN %(with_output)s THEN i.output END AS output
    FROM {_INTERACTION_TABLE} i WHERE i.id = %(interaction_id)s AND i.user_id = %(user_id)s
), before AS (
    SELECT r.thumbs_up, r.stars FROM {_RATING_TABLE} r
    WHERE r.user_id = %(user_id)s AND r.interaction_id = %(interaction_id)s
), saved AS (
    INSERT INTO {_RATING_TABLE}
        (user_id, interaction_id, thumbs_up, stars, comment, created_at, updated_at)
    SELECT t.user_id, t.id, %(thumbs_up)s, %(stars)s, %(comment)s, %(now)s, %(now)s FROM target t
    ON CONFLICT (user_id, interaction_id) DO UPDATE SET
        thumbs_up = EXCLUDED.thumbs_up, stars = EXCLUDED.stars, comment = EXCLUDED.comment,
        updated_at = EXCLUDED.updated_at
    RETURNING id, created_at
)
SELECT s.id, s.created_at, t.output, b.thumbs_up, b.stars
FROM saved s CROSS JOIN target t LEFT JOIN before b ON true
"""


def rate(
    user: User,
    interaction_id: int,
    *,
    thumbs_up: bool | None = None,
    stars: int | None = None,
    comment: str = "",
) -> tuple[Rating, bool]:
    """Set the caller's rating of an interaction (thumbs or stars); return it and whether it is new.

    The write path's hot spot: one statement checks that the interaction is the caller's and
    inserts, or replaces the rating they gave it before; the user's η evidence follows in the
    same transaction.
    """
    now = timezone.now()
    with _interactions_must_exist(interaction=interaction_id), transaction.atomic():
        tally = etas.hold(user.pk)
        params = {
            "thumbs_up": thumbs_up,
            "stars": stars,
            "comment": comment,
            "now": now,
            "interaction_id": interaction_id,
            "user_id": user.pk,
            "with_output": tally.counting,
        }
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT_RATING, params)
            row = cursor.fetchone()
        if row is None:
            raise _unknown_interaction("interaction", interaction_id)
        pk, created_at, output, thumbs_before, stars_before = row
        before = selectors.kto_label(thumbs_before, stars_before)
        label = selectors.kto_label(thumbs_up, stars)
        if output is not None and before != label:
            tally.thumb(output, before, -1)
            tally.thumb(output, label)
            tally.save()
    rating = Rating(
        pk=pk,
        user=user,
        interaction_id=interaction_id,
        thumbs_up=thumbs_up,
        stars=stars,
        comment=comment,
        created_at=created_at,
        updated_at=now,
    )
    return rating, created_at == now


def update_rating(rating: Rating, **changes: Any) -> Rating:
    """Change a rating's thumbs, stars or comment; thumbs and stars replace each other."""
    if changes.get("thumbs_up") is not None:
        changes["stars"] = None
    elif changes.get("stars") is not None:
        changes["thumbs_up"] = None
    with transaction.atomic():
        tally = etas.hold(rating.user_id)
        before = _rated(rating.pk) if tally.counting else None
        for field, value in changes.items():
            setattr(rating, field, value)
        rating.save(update_fields=[*changes, "updated_at"])
        if before is not None and (after := _rated(rating.pk)) is not None and after != before:
            tally.thumb(*before, -1)
            tally.thumb(*after)
            tally.save()
    return rating


_RATED = ("interaction__output", "thumbs_up", "stars")


def _rated(rating_id: int) -> tuple[str, bool | None] | None:
    """The output a stored rating judges and its KTO label (None: no such rating)."""
    row = Rating.objects.filter(pk=rating_id).values_list(*_RATED).first()
    return None if row is None else (row[0], selectors.kto_label(row[1], row[2]))


@dataclass(frozen=True)
class EditCost:
    """Word-level Levenshtein distance and word diff from an original to its edited version."""

    distance: int
    diff: list[dict[str, str]]


def edit_cost(original: str, edited: str) -> EditCost:
    """The cost of an edit, computed on the span between the words both ends share.

    Setting the shared ends aside changes neither the distance nor what the diff says, and
    keeps a small edit of a long text cheap (both measures are quadratic in the span).
    """
    a, b = words(original), words(edited)
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    middle_a = " ".join(a[start : len(a) - end])
    middle_b = " ".join(b[start : len(b) - end])
    ops = [DiffOp("equal", " ".join(a[:start]))] if start else []
    ops += word_diff(middle_a, middle_b)
    ops += [DiffOp("equal", " ".join(a[len(a) - end :]))] if end else []
    return EditCost(word_levenshtein(middle_a, middle_b), [op.as_dict() for op in ops])


def record_edit(user: User, interaction_id: int, *, edited: str, original: str = "") -> Edit:
    """Store the caller's edit of an interaction's output (or of ``original`` when given).

    An edit that changes no word is stored too, as a no-op with distance 0.
    """
    output = selectors.owned_interaction_output(user, interaction_id)
    if output is None:
        raise _unknown_interaction("interaction", interaction_id)
    original = original or output
    cost = edit_cost(original, edited)
    # The edit and its "waiting to be learned" mark commit together: none is ever left unlearned.
    with _interactions_must_exist(interaction=interaction_id), transaction.atomic():
        tally = etas.hold(user.pk)
        edit = Edit.objects.create(
            user=user,
            interaction_id=interaction_id,
            original=original,
            edited=edited,
            distance=cost.distance,
            diff=cost.diff,
        )
        schedule_inference(edit)  # CIPHER memory: learn from the edit, or store the used preference
        if edit.distance:
            tally.pair(edited, original)
            tally.save()
    if edit.distance:
        schedule_fit_check(user)  # a new preference pair: start a fit at the threshold
    return edit


def _output_of(interaction: Interaction | None) -> str:
    return interaction.output if interaction else ""


def create_comparison(
    user: User,
    *,
    choice: str,
    prompt: str = "",
    response_a: str = "",
    response_b: str = "",
    interaction_a_id: int | None = None,
    interaction_b_id: int | None = None,
    source: str = "",
) -> Comparison:
    """Store an A/B choice; responses (and prompt, source) not given come from interactions."""
    sides: dict[str, Interaction | None] = {}
    for side, interaction_id in (("a", interaction_a_id), ("b", interaction_b_id)):
        sides[side] = None
        if interaction_id is not None:
            sides[side] = selectors.owned_interactions(user).filter(pk=interaction_id).first()
            if sides[side] is None:
                raise _unknown_interaction(f"interaction_{side}", interaction_id)
    first = sides["a"] or sides["b"]
    refs = {"interaction_a": interaction_a_id, "interaction_b": interaction_b_id}
    with _interactions_must_exist(**refs), transaction.atomic():
        comparison = Comparison.objects.create(
            user=user,
            prompt=prompt or (first.prompt if first else ""),
            source=source or (first.source if first else ""),
            response_a=response_a or _output_of(sides["a"]),
            response_b=response_b or _output_of(sides["b"]),
            interaction_a=sides["a"],
            interaction_b=sides["b"],
            choice=choice,
        )
        schedule_embedding(Comparison)
        if choice != Comparison.Choice.TIE:
            schedule_fit_check(user)  # a new preference pair: start a fit at the threshold
    return comparison


def update_comparison(comparison: Comparison, *, choice: str) -> Comparison:
    """Change the choice of a comparison (its texts stay as they were compared)."""
    comparison.choice = choice
    comparison.save(update_fields=["choice", "updated_at"])
    return comparison


def delete(obj: Interaction | Rating | Edit | Comparison) -> None:
    """Hard-delete one object (an interaction takes its ratings and edits with it); the user's
    η evidence loses what the deleted ratings and edits gave it, in the same transaction."""
    if isinstance(obj, Comparison):
        obj.delete()
        return
    with transaction.atomic():
        tally = etas.hold(obj.user_id)
        if tally.counting:
            _take_back(tally, obj)
        obj.delete()
        tally.save()


def _take_back(tally: etas.Tally, obj: Interaction | Rating | Edit) -> None:
    """Take the signals of ``obj``'s ratings and edits (as stored now) out of ``tally``."""
    scope = {"interaction": obj} if isinstance(obj, Interaction) else {"pk": obj.pk}
    if not isinstance(obj, Edit):
        rated = Rating.objects.filter(**scope).values_list(*_RATED)
        for output, thumbs_up, stars in rated:
            tally.thumb(output, selectors.kto_label(thumbs_up, stars), -1)
    if not isinstance(obj, Rating):
        edits = Edit.objects.filter(**scope).exclude(distance=0)
        for edited, original in edits.values_list("edited", "original"):
            tally.pair(edited, original, -1)
