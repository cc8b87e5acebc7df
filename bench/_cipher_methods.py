"""The learning methods of the CIPHER benchmark (PRELUDE, Gao et al. 2024), per simulated user.

Each method picks the preference that conditions the agent in a round (``preference``) and learns
from the user's reaction (``learn``). All of them learn with the offline inference backend of
``apps.memory.inference``, and CIPHER retrieves and aggregates with ``apps.memory.cipher``, the
code the platform runs. ``usage`` counts the calls an LLM backend would get (inference and
aggregation) with their prompt and completion tokens; ``conditioning_tokens`` counts what each
method adds to the agent's generation prompts (a phrase, or ICL's raw examples).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from apps.memory.cipher import (
    DEFAULT_NEAR_DISTANCE,
    Neighbor,
    condition,
    rank,
    taught,
    within_reach,
)
from apps.memory.inference import OfflineBackend, Usage, count_tokens
from core.world.preferences import style_to_phrase
from core.world.simulated_users import SimulatedUser, UserResponse
from core.world.sources import Context

LEARN_FROM = 5
"""Edits that explore-then-exploit and continual learning infer from; ICL's examples."""


@dataclass(frozen=True)
class Round:
    """One round's input: the context, its unit embedding, and the task."""

    context: Context
    embedding: np.ndarray
    task: str


@dataclass
class Method:
    """No learning: the agent writes in its default style. Subclasses learn."""

    name: ClassVar[str] = "no learning"
    user: SimulatedUser
    backend: OfflineBackend = field(default_factory=OfflineBackend)
    usage: Usage = field(default_factory=Usage)
    conditioning_tokens: int = 0

    def preference(self, item: Round) -> str:
        """The phrase that conditions the agent this round ("" for none)."""
        return ""

    def learn(self, item: Round, used: str, output: str, response: UserResponse) -> None:
        """Take in the user's reaction to ``output`` (generated with ``used``)."""

    def _condition_with(self, phrase: str, usage: Usage | None = None) -> str:
        self.usage += usage or Usage()
        self.conditioning_tokens += count_tokens(phrase)
        return phrase


class Oracle(Method):
    """The user's true latent preference for the context's source."""

    name: ClassVar[str] = "oracle"

    def preference(self, item: Round) -> str:
        return self._condition_with(style_to_phrase(self.user.latent_style(item.context.source)))


@dataclass
class ExploreThenExploit(Method):
    """Infer once from the first five edits, then use that preference for every context."""

    name: ClassVar[str] = "explore-then-exploit"
    edits: list[tuple[str, str]] = field(default_factory=list)
    learned: str | None = None

    def preference(self, item: Round) -> str:
        return self._condition_with(self.learned or "")

    def learn(self, item: Round, used: str, output: str, response: UserResponse) -> None:
        if self.learned is not None or response.accepted:
            return
        self.edits.append((output, response.edited))
        if len(self.edits) == LEARN_FROM:
            inferred = self.backend.infer(self.edits)
            self.usage += inferred.usage
            self.learned = inferred.preference


@dataclass
class Continual(Method):
    """Re-infer one context-agnostic preference from the last five edits after every edit."""

    name: ClassVar[str] = "continual"
    edits: list[tuple[str, str]] = field(default_factory=list)
    learned: str = ""

    def preference(self, item: Round) -> str:
        return self._condition_with(self.learned)

    def learn(self, item: Round, used: str, output: str, response: UserResponse) -> None:
        if response.accepted:
            return
        self.edits = [*self.edits, (output, response.edited)][-LEARN_FROM:]
        inferred = self.backend.infer(self.edits)
        self.usage += inferred.usage
        self.learned = inferred.preference


class _Nearest:
    """Unit embeddings of past rounds, searched by cosine distance."""

    def __init__(self) -> None:
        self.vectors: list[np.ndarray] = []

    def distances(self, query: np.ndarray) -> np.ndarray:
        if not self.vectors:
            return np.zeros(0)
        return 1.0 - np.stack(self.vectors) @ query


@dataclass
class ICLEdit(Method):
    """The raw edit pairs of the five nearest edited contexts, shown to the agent as examples.

    The style model cannot read examples, so the agent's in-context reading is emulated with the
    same reader as everything else (the offline backend over those pairs); the examples' tokens
    are what it costs, in every generation prompt. Accepted rounds add no example.
    """

    name: ClassVar[str] = "ICL-edit-5"
    k: int = LEARN_FROM
    index: _Nearest = field(default_factory=_Nearest)
    examples: list[tuple[str, str]] = field(default_factory=list)

    def preference(self, item: Round) -> str:
        if not self.examples:
            return ""
        order = np.argsort(self.index.distances(item.embedding), kind="stable")[: self.k]
        shown = [self.examples[i] for i in order]
        self.conditioning_tokens += sum(count_tokens(a) + count_tokens(b) for a, b in shown)
        return self.backend.infer(shown).preference

    def learn(self, item: Round, used: str, output: str, response: UserResponse) -> None:
        if not response.accepted:
            self.index.vectors.append(item.embedding)
            self.examples.append((output, response.edited))


@dataclass
class Cipher(Method):
    """CIPHER-k: memory of (context embedding, preference); k nearest aggregated (k=1: as is).

    An edit adds the preference inferred from it; an accepted output adds the preference used.
    ``near``: only entries within it vote when any are (``within_reach``), and an edit teaches
    the used preference corrected by it (``taught``): the platform's rule. None: the k nearest
    vote whatever their distance and an edit teaches what the reader names (the rule before).
    """

    k: int = 5
    threshold: float = 0.5  # the setting's default; simulated users write no preferences
    near: float | None = DEFAULT_NEAR_DISTANCE
    index: _Nearest = field(default_factory=_Nearest)
    preferences: list[str] = field(default_factory=list)

    def preference(self, item: Round) -> str:
        neighbors = [
            Neighbor(i, text, float(d), False)
            for i, (text, d) in enumerate(
                zip(self.preferences, self.index.distances(item.embedding), strict=True)
            )
        ]
        ranked = rank(neighbors, self.k, self.threshold)
        if self.near is not None:
            ranked = within_reach(ranked, self.near, self.threshold)
        conditioning = condition(ranked, self.threshold, self.backend)
        return self._condition_with(conditioning.preference, conditioning.usage)

    def learn(self, item: Round, used: str, output: str, response: UserResponse) -> None:
        if response.accepted:
            if used:
                self._remember(item, used)
            return
        inferred = self.backend.infer([(output, response.edited)])
        self.usage += inferred.usage
        if self.near is not None:  # the platform's rule: the used preference, corrected
            inferred = taught(used, inferred.preference, self.backend)
            self.usage += inferred.usage
        if inferred.preference:
            self._remember(item, inferred.preference)

    def _remember(self, item: Round, preference: str) -> None:
        self.index.vectors.append(item.embedding)
        self.preferences.append(preference)


BEFORE: dict[str, bool] = {"names_kept": True, "share_of_all": True}
"""The reader and aggregation rule before evidence per attribute (``OfflineBackend`` options)."""


@dataclass(frozen=True)
class MethodSpec:
    """A method of the benchmark: a factory of a fresh learner for one user (given its reader),
    and the reader's rule (``OfflineBackend`` options; {} is the platform's)."""

    make: Callable[[SimulatedUser, OfflineBackend], Method]
    rule: dict[str, bool] = field(default_factory=dict)


def _cipher(k: int, near: float | None) -> Callable[[SimulatedUser, OfflineBackend], Method]:
    return lambda user, backend: Cipher(user=user, backend=backend, k=k, near=near)


def _plain(cls: type[Method]) -> Callable[[SimulatedUser, OfflineBackend], Method]:
    return lambda user, backend: cls(user=user, backend=backend)


METHODS: dict[str, MethodSpec] = {
    "no learning": MethodSpec(_plain(Method)),
    "explore-then-exploit": MethodSpec(_plain(ExploreThenExploit)),
    "continual": MethodSpec(_plain(Continual)),
    "ICL-edit-5": MethodSpec(_plain(ICLEdit)),
    "CIPHER-1 (before)": MethodSpec(_cipher(1, None), BEFORE),
    "CIPHER-5 (before)": MethodSpec(_cipher(5, None), BEFORE),
    "CIPHER-1": MethodSpec(_cipher(1, DEFAULT_NEAR_DISTANCE)),
    "CIPHER-5": MethodSpec(_cipher(5, DEFAULT_NEAR_DISTANCE)),
    "oracle": MethodSpec(_plain(Oracle)),
}
"""Every method of the benchmark, by name. "(before)": CIPHER as it was before reach and
evidence per attribute (no distance cut-off; the reader names kept features; shares of all)."""
