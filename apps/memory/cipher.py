"""CIPHER's retrieval rule and conditioning as pure functions, shared by the selectors (whose SQL
applies the same order) and the benchmark (which retrieves in memory).

The rule. Retrieve the user's entries nearest to the query context by cosine distance. A
preference the *user wrote* is **in charge** when its context is within ``threshold``
(``ATTUNE_MEMORY_PRECEDENCE_DISTANCE``, cosine distance) of the query: in-charge entries come first
(nearest first), then every other entry nearest first (newer first on ties); the first ``k`` are
used. Aggregation keeps that precedence: the user's own phrase decides what it names and the other
entries fill in the rest (the most represented of their attributes).

Reach. A learned entry speaks for contexts like its own: when some of the ranked entries lie
within ``near`` (``ATTUNE_MEMORY_NEAR_DISTANCE``) of the query, only those (and the user's own in
charge) are aggregated, so a kind of context the user has edited once is not outvoted by entries
of other kinds that happen to fill the ``k``; a context unlike any before (none within reach)
borrows from the nearest entries, whatever their distance.

Superseding. People change their taste: an entry stored for a context replaces (supersedes) the
user's older *active* entries that are among its ``k`` nearest contexts, within ``cutoff``
(``ATTUNE_MEMORY_SUPERSEDE_DISTANCE``), and **contradict** it: some style attribute both phrases
name has different values (a phrase the parser cannot read contradicts nothing). Learned entries
(inferred, used) never replace one the user wrote; one the user wrote replaces any. Replaced
entries are kept and restorable, but no longer retrieved, so the newer taste is not outvoted by
the older entries for similar contexts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from apps.memory.inference import Candidate, InferenceBackend, InferenceError, Inferred, Usage
from core.world.preferences import parse_preference

log = logging.getLogger(__name__)

DEFAULT_NEAR_DISTANCE = 0.7
"""``ATTUNE_MEMORY_NEAR_DISTANCE``'s default: 95% of MiniLM distances between contexts of one
offline-world source are below 0.71, 95% of those between different sources above 0.73."""


@dataclass(frozen=True)
class Neighbor:
    """One memory entry near a query context."""

    entry_id: int
    preference: str
    distance: float
    written_by_user: bool

    def in_charge(self, threshold: float) -> bool:
        """Whether this is a user-written preference for a context similar to the query."""
        return self.written_by_user and self.distance <= threshold


def rank(neighbors: Iterable[Neighbor], k: int, threshold: float) -> list[Neighbor]:
    """The first ``k`` neighbors in precedence order (see the module docstring)."""
    return sorted(neighbors, key=lambda n: (not n.in_charge(threshold), n.distance, -n.entry_id))[
        :k
    ]


def within_reach(ranked: list[Neighbor], near: float, threshold: float) -> list[Neighbor]:
    """The ranked neighbors that vote for a query (see Reach in the module docstring): those
    within ``near`` of it, and the user's own in charge, when there are any; else all of them."""
    close = [n for n in ranked if n.distance <= near or n.in_charge(threshold)]
    return close or ranked


@dataclass(frozen=True)
class Conditioning:
    """What conditions a generation: the preference phrase and the memory entries behind it.

    ``degraded`` is empty, or why the entries could not be aggregated (an
    :class:`~apps.memory.inference.InferenceError` reason): then the first one is used as it is.
    """

    preference: str
    memory_ids: tuple[int, ...] = ()
    usage: Usage = field(default_factory=Usage)
    degraded: str = ""


def fallback(ranked: list[Neighbor], reason: str) -> Conditioning:
    """The first ranked neighbor used as it is (CIPHER-1), when aggregation failed for ``reason``.

    Why that one: it is the user's own phrase for this kind of context when there is one, else
    the nearest context's preference, which is what the offline benchmark measures as CIPHER-1
    (a lower edit cost than CIPHER-5 there); it is whole text, where an offline aggregation of an
    instruct model's free phrases would keep only the words the style detectors know.
    """
    if len({n.preference for n in ranked}) <= 1:  # nothing to aggregate: nothing lost
        ids = tuple(n.entry_id for n in ranked)
        return Conditioning(ranked[0].preference if ranked else "", ids)
    first = ranked[0]
    return Conditioning(first.preference, (first.entry_id,), degraded=reason)


def condition(ranked: list[Neighbor], threshold: float, backend: InferenceBackend) -> Conditioning:
    """Aggregate ranked neighbors into one preference (one neighbor is used as it is).

    Degrades, never fails: a backend that cannot aggregate (down, slow, garbled, resting after
    a failure) gives the :func:`fallback`, which says why.
    """
    if not ranked:
        return Conditioning("")
    try:
        age = {entry_id: place for place, entry_id in enumerate(sorted(n.entry_id for n in ranked))}
        answer = backend.aggregate(
            [Candidate(n.preference, n.in_charge(threshold), age[n.entry_id]) for n in ranked]
        )
    except InferenceError as err:
        log.warning("memory aggregation failed (%s): %s; first entry used", err.reason, err)
        return fallback(ranked, err.reason)
    return Conditioning(answer.preference, tuple(n.entry_id for n in ranked), answer.usage)


def taught(used: str, inferred: str, backend: InferenceBackend) -> Inferred:
    """What an edit teaches for its context: the preference that conditioned the output,
    corrected by what the edit moved (``inferred`` decides the attributes it names, ``used``
    gives the rest: the user saw them and left them). The entry stands whole, so a CIPHER-1
    retrieval of it asks for everything again, not only the last correction. Nothing used, or
    nothing read: ``inferred`` as it is (an edit that moved nothing teaches nothing)."""
    if not used or not inferred or used == inferred:
        return Inferred(inferred)
    return backend.aggregate(
        [Candidate(inferred, in_charge=True, recency=1), Candidate(used, recency=0)]
    )


def contradicts(first: str, second: str) -> bool:
    """Whether two preference phrases give some attribute they both name different values
    ("bullet points, brief" and "prose": yes; "brief" and "prose": no)."""
    a, b = parse_preference(first).style, parse_preference(second).style
    return any(a[name] != value for name, value in b.items() if name in a)


def may_supersede(newer_by_user: bool, older_by_user: bool) -> bool:
    """Whether a newer entry may replace an older one: a learned entry never replaces the user's
    own words; the user's own replace anything."""
    return newer_by_user or not older_by_user


@dataclass(frozen=True)
class Rival:
    """An active entry near the context of an entry being placed (one of its neighbors).

    ``newer``: stored after the entry being placed (its embedding came later), so it is the newer
    word and may replace that entry instead."""

    entry_id: int
    preference: str
    distance: float
    written_by_user: bool
    newer: bool = False


@dataclass(frozen=True)
class Superseding:
    """What placing an entry changes: the older entries it replaces, or (``superseded_by``) the
    newer entry that replaces it (then it replaces nothing)."""

    supersedes: tuple[int, ...] = ()
    superseded_by: int | None = None


def superseding(
    preference: str, written_by_user: bool, rivals: Iterable[Rival], k: int, cutoff: float
) -> Superseding:
    """Which of an entry's active neighbors it replaces (see the module docstring).

    Only the ``k`` nearest ``rivals`` within ``cutoff`` count. A newer contradicting one that may
    replace the entry (the newest of them) does so; else the entry replaces every older
    contradicting one it may replace.
    """
    near = sorted(rivals, key=lambda r: (r.distance, -r.entry_id))[:k]
    against = [r for r in near if r.distance <= cutoff and contradicts(preference, r.preference)]
    newer = [
        r.entry_id for r in against if r.newer and may_supersede(r.written_by_user, written_by_user)
    ]
    if newer:
        return Superseding(superseded_by=max(newer))
    return Superseding(
        supersedes=tuple(
            sorted(
                r.entry_id
                for r in against
                if not r.newer and may_supersede(written_by_user, r.written_by_user)
            )
        )
    )
