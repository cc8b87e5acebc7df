"""Everyone's feedback as preference pairs for CoPL's graph (torch-free reads).

A pair says that a user preferred one response text to another:
- a comparison decided A or B (ties say nothing);
- an edit that changed something: the edited text over the original;
- ratings of the same user on outputs to the same prompt: the higher-rated output over the
  lower-rated one (thumbs up counts as 1, thumbs down as 0, stars s as (s - 1) / 4; equal
  scores say nothing). At most ``MAX_RATED_PER_PROMPT`` ratings per user and prompt are paired
  (the newest), so one prompt cannot flood the graph.

The graph keys a response by the SHA-256 of its text (:func:`text_key`), so the stored embeddings
artifact holds no user's text: identical texts, whoever wrote or rated them, are one node.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from apps.accounts.models import User
from apps.feedback.models import Comparison, Edit, Rating
from apps.feedback.selectors import Cutoffs, newest_feedback

MAX_RATED_PER_PROMPT = 8
CHUNK = 2000


@dataclass(frozen=True)
class CollabPair:
    """``user_id`` preferred ``chosen`` to ``rejected`` as answers to ``prompt``; ``key`` names
    the feedback row(s) it came from (stable, for the held-out split)."""

    key: str
    user_id: int
    prompt: str
    chosen: str
    rejected: str


def text_key(text: str) -> str:
    """The graph's node key of a response text (hex SHA-256, 32 characters)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def current_cutoffs() -> Cutoffs:
    """The newest ids of all edits, comparisons and ratings now."""
    return newest_feedback()


def rating_score(thumbs_up: bool | None, stars: int | None) -> float | None:
    """A rating on one scale: thumbs up 1, down 0, stars (s - 1) / 4; None when neither."""
    if thumbs_up is not None:
        return 1.0 if thumbs_up else 0.0
    if stars is not None:
        return (stars - 1) / 4
    return None


def _scoped(queryset, user: User | None, upto: int | None):  # noqa: ANN001
    if user is not None:
        queryset = queryset.filter(user=user)
    if upto is not None:
        queryset = queryset.filter(id__lte=upto)
    return queryset


def comparison_pairs(user: User | None = None, upto: int | None = None) -> Iterator[CollabPair]:
    rows = (
        _scoped(Comparison.objects, user, upto)
        .exclude(choice=Comparison.Choice.TIE)
        .order_by("id")
        .values_list("id", "user_id", "prompt", "response_a", "response_b", "choice")
    )
    for pk, user_id, prompt, a, b, choice in rows.iterator(chunk_size=CHUNK):
        if a == b:
            continue
        chosen, rejected = (a, b) if choice == Comparison.Choice.A else (b, a)
        yield CollabPair(f"comparison:{pk}", user_id, prompt, chosen, rejected)


def edit_pairs(user: User | None = None, upto: int | None = None) -> Iterator[CollabPair]:
    rows = (
        _scoped(Edit.objects, user, upto)
        .exclude(distance=0)
        .order_by("id")
        .values_list("id", "user_id", "interaction__prompt", "edited", "original")
    )
    for pk, user_id, prompt, edited, original in rows.iterator(chunk_size=CHUNK):
        if edited != original:
            yield CollabPair(f"edit:{pk}", user_id, prompt, edited, original)


def pairs_from_ratings(
    rows: Iterable[tuple[int, int, str, str, bool | None, int | None]],
) -> Iterator[CollabPair]:
    """Pairs from (rating id, user id, prompt, output, thumbs_up, stars) rows (see the module)."""
    groups: dict[tuple[int, str], list[tuple[int, str, float]]] = defaultdict(list)
    for pk, user_id, prompt, output, thumbs_up, stars in rows:
        score = rating_score(thumbs_up, stars)
        if score is not None:
            groups[(user_id, prompt)].append((pk, output, score))
    for (user_id, prompt), rated in groups.items():
        rated = sorted(rated)[-MAX_RATED_PER_PROMPT:]
        for i, (pk_a, text_a, score_a) in enumerate(rated):
            for pk_b, text_b, score_b in rated[i + 1 :]:
                if score_a == score_b or text_a == text_b:
                    continue
                good, bad = (text_a, text_b) if score_a > score_b else (text_b, text_a)
                key = f"ratings:{pk_a}:{pk_b}"
                yield CollabPair(key, user_id, prompt, good, bad)


def rating_pairs(user: User | None = None, upto: int | None = None) -> Iterator[CollabPair]:
    rows = (
        _scoped(Rating.objects, user, upto)
        .order_by("id")
        .values_list(
            "id", "user_id", "interaction__prompt", "interaction__output", "thumbs_up", "stars"
        )
    )
    return pairs_from_ratings(rows.iterator(chunk_size=CHUNK))


def training_pairs(upto: Cutoffs | None = None, user: User | None = None) -> list[CollabPair]:
    """Every pair of every user (or of ``user``), up to the cutoffs when given, in a stable
    order: comparisons, edits, then ratings."""
    return [
        *comparison_pairs(user, upto.comparison if upto else None),
        *edit_pairs(user, upto.edit if upto else None),
        *rating_pairs(user, upto.rating if upto else None),
    ]


def split_heldout(
    pairs: list[CollabPair], share: float
) -> tuple[list[CollabPair], list[CollabPair]]:
    """(train, held-out): per user, the ``floor(n * share)`` pairs whose keys hash lowest, so a
    user always keeps at least one training pair and a retry holds out the same pairs."""
    by_user: dict[int, list[CollabPair]] = defaultdict(list)
    for pair in pairs:
        by_user[pair.user_id].append(pair)
    heldout: set[str] = set()
    for user_pairs in by_user.values():
        count = int(len(user_pairs) * share)
        ranked = sorted(user_pairs, key=lambda p: hashlib.sha256(p.key.encode()).hexdigest())
        heldout.update(p.key for p in ranked[:count])
    return [p for p in pairs if p.key not in heldout], [p for p in pairs if p.key in heldout]
