"""CIPHER's retrieval rule and conditioning as pure functions, shared by the selectors (whose SQL
applies the same order) and the benchmark (which retrieves in memory).

The rule. Retrieve the user's entries nearest to the query context by cosine distance. A
preference the *user wrote* is **in charge** when its context is within ``threshold``
(``ATTUNE_MEMORY_PRECEDENCE_DISTANCE``, cosine distance) of the query: in-charge entries come first
(nearest first), then every other entry nearest first (newer first on ties); the first ``k`` are
used. Aggregation keeps that precedence: the user's own phrase decides what it names and the other
entries fill in the rest (the most represented of their attributes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from apps.memory.inference import Candidate, InferenceBackend, Usage


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


@dataclass(frozen=True)
class Conditioning:
    """What conditions a generation: the preference phrase and the memory entries behind it."""

    preference: str
    memory_ids: tuple[int, ...] = ()
    usage: Usage = field(default_factory=Usage)


def condition(ranked: list[Neighbor], threshold: float, backend: InferenceBackend) -> Conditioning:
    """Aggregate ranked neighbors into one preference (one neighbor is used as it is)."""
    if not ranked:
        return Conditioning("")
    answer = backend.aggregate([Candidate(n.preference, n.in_charge(threshold)) for n in ranked])
    return Conditioning(answer.preference, tuple(n.entry_id for n in ranked), answer.usage)
