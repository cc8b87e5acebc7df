"""Reads for feedback: ownership look-ups, data cutoffs, and the one reader of preference pairs
and thumbs that the export, the adapter fit and CoPL all use.

A preference pair says that a user preferred one response text to another as answers to a prompt:
- an edit that changed something: the edited text over the original (a no-op edit, distance 0,
  says nothing);
- a comparison decided A or B (a tie says nothing);
- two ratings of the same user on outputs to the same prompt: the higher-rated output over the
  lower-rated one (thumbs up counts as 1, thumbs down as 0, stars s as (s - 1) / 4; equal scores
  say nothing). At most ``MAX_RATED_PER_PROMPT`` ratings per user and prompt are paired (the
  newest), so one prompt cannot flood CoPL's graph.
A pair of two identical texts says nothing either and is left out.

A thumb is TRL's KTO example: a rated output and its label (thumbs up or 4-5 stars is desirable,
thumbs down or 1-2 stars undesirable; 3 stars is left out). The export writes pairs as DPO rows
``{prompt, chosen, rejected}`` and thumbs as KTO rows ``{prompt, completion, label}``.

Every reader yields in id order and takes a scope: ``user`` (None: everyone), feedback ``after``
and/or ``upto`` some :class:`Cutoffs` (so a retried run sees the same data), or base ``rows`` (the
export's filtered querysets). Each pair or thumb has a stable ``key`` naming the row(s) it came
from: ``edit:<id>``, ``comparison:<id>``, ``ratings:<older id>:<newer id>`` or ``rating:<id>``.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from django.db.models import Max, QuerySet

from apps.accounts.models import User
from apps.feedback.models import (
    COMPARISON_IS_PAIR,
    EDIT_IS_PAIR,
    Comparison,
    Edit,
    Interaction,
    Rating,
)

CHUNK = 2000
KTO_DESIRABLE_STARS = 4
KTO_UNDESIRABLE_STARS = 2
MAX_RATED_PER_PROMPT = 8
Kind = Literal["edit", "comparison", "rating"]


def owned_interactions(user: User) -> QuerySet[Interaction]:
    return Interaction.objects.owned_by(user)


def owned_interaction_output(user: User, interaction_id: int) -> str | None:
    """The output of the caller's interaction ``interaction_id``; None if there is none."""
    return (
        owned_interactions(user).filter(pk=interaction_id).values_list("output", flat=True).first()
    )


# -- cutoffs --------------------------------------------------------------------------------------
class _RecordsCutoffs(Protocol):
    edit_cutoff: int
    comparison_cutoff: int
    rating_cutoff: int


@dataclass(frozen=True)
class Cutoffs:
    """The newest feedback ids a training run may use (so a retried run sees the same data)."""

    edit: int
    comparison: int
    rating: int

    @classmethod
    def of(cls, row: _RecordsCutoffs) -> Cutoffs:
        """The cutoffs a fit job or CoPL run recorded when it was requested."""
        return cls(row.edit_cutoff, row.comparison_cutoff, row.rating_cutoff)


def current_cutoffs(user: User | None = None) -> Cutoffs:
    """The newest edit, comparison and rating ids now: the user's, or everyone's."""

    def newest(model: type[Edit | Comparison | Rating]) -> int:
        rows = model.objects.all() if user is None else model.objects.filter(user=user)
        return rows.aggregate(m=Max("id"))["m"] or 0

    return Cutoffs(newest(Edit), newest(Comparison), newest(Rating))


# -- preference pairs and thumbs ------------------------------------------------------------------
@dataclass(frozen=True)
class PreferencePair:
    """``user_id`` preferred ``chosen`` to ``rejected`` as answers to ``prompt``."""

    key: str
    user_id: int
    prompt: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class Thumb:
    """``user_id`` found ``completion`` desirable (``label``) or not as an answer to ``prompt``."""

    key: str
    user_id: int
    prompt: str
    completion: str
    label: bool


def _scoped(
    rows: QuerySet,
    kind: Kind,
    user: User | None,
    after: Cutoffs | None,
    upto: Cutoffs | None,
) -> QuerySet:
    if user is not None:
        rows = rows.filter(user=user)
    if after is not None:
        rows = rows.filter(id__gt=getattr(after, kind))
    if upto is not None:
        rows = rows.filter(id__lte=getattr(upto, kind))
    return rows


def _edit_rows(
    rows: QuerySet[Edit] | None, user: User | None, after: Cutoffs | None, upto: Cutoffs | None
) -> QuerySet[Edit]:
    base = Edit.objects.all() if rows is None else rows
    found = _scoped(base, "edit", user, after, upto)
    return found.filter(EDIT_IS_PAIR)


def _comparison_rows(
    rows: QuerySet[Comparison] | None,
    user: User | None,
    after: Cutoffs | None,
    upto: Cutoffs | None,
) -> QuerySet[Comparison]:
    base = Comparison.objects.all() if rows is None else rows
    found = _scoped(base, "comparison", user, after, upto)
    return found.filter(COMPARISON_IS_PAIR)


def edit_pairs(
    rows: QuerySet[Edit] | None = None,
    *,
    user: User | None = None,
    after: Cutoffs | None = None,
    upto: Cutoffs | None = None,
) -> Iterator[PreferencePair]:
    """Pairs from edits that changed something: the edited text over the original."""
    found = (
        _edit_rows(rows, user, after, upto)
        .order_by("id")
        .values_list("id", "user_id", "interaction__prompt", "edited", "original")
    )
    for pk, user_id, prompt, edited, original in found.iterator(chunk_size=CHUNK):
        yield PreferencePair(f"edit:{pk}", user_id, prompt, edited, original)


def comparison_pairs(
    rows: QuerySet[Comparison] | None = None,
    *,
    user: User | None = None,
    after: Cutoffs | None = None,
    upto: Cutoffs | None = None,
) -> Iterator[PreferencePair]:
    """Pairs from decided comparisons of two different texts: the chosen over the other."""
    found = (
        _comparison_rows(rows, user, after, upto)
        .order_by("id")
        .values_list("id", "user_id", "prompt", "response_a", "response_b", "choice")
    )
    for pk, user_id, prompt, a, b, choice in found.iterator(chunk_size=CHUNK):
        chosen, rejected = (a, b) if choice == Comparison.Choice.A else (b, a)
        yield PreferencePair(f"comparison:{pk}", user_id, prompt, chosen, rejected)


def newest_pairs(*, user: User, upto: Cutoffs | None, limit: int) -> list[PreferencePair]:
    """The user's ``limit`` newest pairs from edits and comparisons (up to ``upto``), oldest
    first: what an adapter fit trains on, so that a newer adapter follows a change of taste
    instead of averaging it with years of the old one, and a fit's time stays bounded."""
    stamped = [
        *((at, "edit", pk) for pk, at in _newest(_edit_rows(None, user, None, upto), limit)),
        *(
            (at, "comparison", pk)
            for pk, at in _newest(_comparison_rows(None, user, None, upto), limit)
        ),
    ]
    kept = sorted(stamped)[-limit:] if limit > 0 else []
    ids = {kind: [pk for _, k, pk in kept if k == kind] for kind in ("edit", "comparison")}
    found = {
        pair.key: pair
        for pair in (
            *edit_pairs(Edit.objects.filter(id__in=ids["edit"])),
            *comparison_pairs(Comparison.objects.filter(id__in=ids["comparison"])),
        )
    }
    return [found[f"{kind}:{pk}"] for _, kind, pk in kept]


def _newest(rows: QuerySet, limit: int) -> list[tuple[int, object]]:
    return list(rows.order_by("-created_at", "-id").values_list("id", "created_at")[:limit])


def rating_score(thumbs_up: bool | None, stars: int | None) -> float | None:
    """A rating on one scale: thumbs up 1, down 0, stars (s - 1) / 4; None when neither."""
    if thumbs_up is not None:
        return 1.0 if thumbs_up else 0.0
    if stars is not None:
        return (stars - 1) / 4
    return None


def pairs_from_ratings(
    rows: Iterable[tuple[int, int, str, str, bool | None, int | None]], after: int = 0
) -> Iterator[PreferencePair]:
    """Pairs from (rating id, user id, prompt, output, thumbs_up, stars) rows, in id order (see
    the module); only those whose newer rating's id is above ``after``."""
    groups: dict[tuple[int, str], list[tuple[int, str, float]]] = defaultdict(list)
    for pk, user_id, prompt, output, thumbs_up, stars in rows:
        score = rating_score(thumbs_up, stars)
        if score is not None:
            groups[(user_id, prompt)].append((pk, output, score))
    for (user_id, prompt), rated in groups.items():
        rated = sorted(rated)[-MAX_RATED_PER_PROMPT:]
        for i, (pk_a, text_a, score_a) in enumerate(rated):
            for pk_b, text_b, score_b in rated[i + 1 :]:
                if pk_b <= after or score_a == score_b or text_a == text_b:
                    continue
                good, bad = (text_a, text_b) if score_a > score_b else (text_b, text_a)
                yield PreferencePair(f"ratings:{pk_a}:{pk_b}", user_id, prompt, good, bad)


def rating_pairs(
    rows: QuerySet[Rating] | None = None,
    *,
    user: User | None = None,
    after: Cutoffs | None = None,
    upto: Cutoffs | None = None,
) -> Iterator[PreferencePair]:
    """Pairs from two ratings of one user on outputs to one prompt. ``after`` keeps the pairs
    whose newer rating is after it (paired with any older rating up to ``upto``)."""
    base = Rating.objects.all() if rows is None else rows
    found = (
        _scoped(base, "rating", user, None, upto)
        .order_by("id")
        .values_list(
            "id", "user_id", "interaction__prompt", "interaction__output", "thumbs_up", "stars"
        )
    )
    newest = after.rating if after is not None else 0
    return pairs_from_ratings(found.iterator(chunk_size=CHUNK), after=newest)


def preference_pairs(
    *,
    user: User | None = None,
    after: Cutoffs | None = None,
    upto: Cutoffs | None = None,
    with_ratings: bool = True,
) -> list[PreferencePair]:
    """The scope's pairs in a stable order: edits, comparisons, then (``with_ratings``) ratings."""
    scope = {"user": user, "after": after, "upto": upto}
    found = [*edit_pairs(**scope), *comparison_pairs(**scope)]
    if with_ratings:
        found.extend(rating_pairs(**scope))
    return found


def pair_count(
    *,
    user: User | None = None,
    after: Cutoffs | None = None,
    upto: Cutoffs | None = None,
    with_ratings: bool = True,
) -> int:
    """``len(preference_pairs(...))``, with the edits and comparisons counted by the database."""
    count = (
        _edit_rows(None, user, after, upto).count()
        + _comparison_rows(None, user, after, upto).count()
    )
    if with_ratings:
        count += sum(1 for _ in rating_pairs(user=user, after=after, upto=upto))
    return count


def new_pair_count(user: User, after: Cutoffs | None, at_most: int) -> int:
    """``min(at_most, pair_count(user=user, after=after, with_ratings=False))``: the user's
    preference pairs from edits and comparisons after ``after``, counted only up to ``at_most``.

    Asked after every edit and comparison ("``ATTUNE_FIT_TRIGGER_PAIRS`` new pairs since the last
    fit?"), so it must not read the user's history. The pairs after a cutoff are the user's
    newest, so reading the ``at_most`` newest pairs of each table and keeping those past the
    cutoff gives the same number; those are the last entries of the partial index of the user's
    pairs (``apps.feedback.models.pair_index``). No ``id >`` condition on purpose: with one, the
    planner may walk the primary key from the cutoff through everyone's newer rows, trusting
    that this user's pairs are spread evenly among them.
    """
    found = 0
    for kind, rows in (
        ("edit", _edit_rows(None, user, None, None)),
        ("comparison", _comparison_rows(None, user, None, None)),
    ):
        if found >= at_most:
            break
        cutoff = getattr(after, kind) if after is not None else 0
        newest = rows.order_by("-id").values_list("id", flat=True)[: at_most - found]
        found += sum(1 for pk in newest if pk > cutoff)
    return found


def kto_label(thumbs_up: bool | None, stars: int | None) -> bool | None:
    """Whether a rating marks its completion desirable; None when it says neither (3 stars)."""
    if thumbs_up is not None:
        return thumbs_up
    if stars is not None and stars >= KTO_DESIRABLE_STARS:
        return True
    if stars is not None and stars <= KTO_UNDESIRABLE_STARS:
        return False
    return None


def thumbs(
    rows: QuerySet[Rating] | None = None,
    *,
    user: User | None = None,
    after: Cutoffs | None = None,
    upto: Cutoffs | None = None,
) -> Iterator[Thumb]:
    """The rated outputs with a label (3 stars, which says neither, is left out)."""
    base = Rating.objects.all() if rows is None else rows
    found = (
        _scoped(base, "rating", user, after, upto)
        .order_by("id")
        .values_list(
            "id", "user_id", "interaction__prompt", "interaction__output", "thumbs_up", "stars"
        )
    )
    for pk, user_id, prompt, output, thumbs_up, stars in found.iterator(chunk_size=CHUNK):
        label = kto_label(thumbs_up, stars)
        if label is not None:
            yield Thumb(f"rating:{pk}", user_id, prompt, output, label)


Item = TypeVar("Item", PreferencePair, Thumb)


def split_heldout(items: Sequence[Item], share: float) -> tuple[list[Item], list[Item]]:
    """(train, held-out), each in the items' order.

    Per user: of the user's n items, the ``floor(n * share)`` whose keys' SHA-256 is lowest are
    held out (at most n - 1, so every user keeps a training item and stays in CoPL's graph). With
    the adapter share of 0.2 a fit, which needs ``ATTUNE_FIT_MIN_PAIRS`` = 8 pairs or 16 thumbs,
    always holds out at least one item to score; fewer items hold out none, and a fit with nothing
    to score is not promoted. The choice depends only on the keys of that user's items, never on
    their order, so a retry holds out the same items.
    """
    by_user: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        by_user[item.user_id].append(item)
    heldout: set[str] = set()
    for user_items in by_user.values():
        count = min(math.floor(len(user_items) * share + 1e-9), len(user_items) - 1)
        ranked = sorted(user_items, key=lambda i: hashlib.sha256(i.key.encode()).hexdigest())
        heldout.update(i.key for i in ranked[:count])
    return [i for i in items if i.key not in heldout], [i for i in items if i.key in heldout]
