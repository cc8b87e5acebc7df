"""Layer arbitration: per user, which of the optional layers to apply, chosen by the edit cost
that followed each answer.

Memory is the per-context preference and always applies. The persona (one profile for every
text), the user's adapter and the preference vectors act on every answer alike and can pull
against the memory: an adapter fitted on months of pairs that taught prose, for a person who now
asks for bullet points. Arbitration keeps each of them only where the evidence says it helps.

Each optional layer the user has (and neither they nor the request turned off) is decided on its
own, from its **evidence**: the costs that followed the user's recent answers with it and
without it (``Interaction.layers``), each an edit's word distance, or 0 for an answer rated thumbs
up without an edit (answers without feedback say nothing; answers without the memory, such as
the base model's, neither). Only answers since the current adapter version became active count
(a new adapter starts over, for every layer alike), with the adapter only those of that version;
of each side, the newest ``ATTUNE_ARBITRATION_WINDOW``.

The **decision** per layer: while either side has fewer than
``ATTUNE_ARBITRATION_MIN_EVIDENCE`` answers, a coin decides; then the layer applies when its mean
cost with it is at most the mean without it, except that with probability
``ATTUNE_ARBITRATION_EXPLORE`` the other way is tried, so the evidence keeps up with a person
whose taste changes. The coins and the exploration are drawn for each layer on its own, so whether
one layer applied says nothing about another: each layer's comparison is a fair one (a factorial
design) while exploration stays linear in the layers, and any combination (memory + adapter
without the persona) can win. A layer the request
keeps (``attune.layers: {"adapter": true}``) is never left out, and ``ATTUNE_ARBITRATION=false``
turns arbitration off (every available layer applies).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import BooleanField, Exists, Min, OuterRef

from apps.accounts.models import User
from apps.feedback.models import Interaction, Rating
from core.serving import LAYERS

ARBITRATED = ("persona", "adapter", "vectors")
"""The layers arbitration may leave out; memory, the per-context preference, always applies."""


@dataclass(frozen=True)
class LayerEvidence:
    """One arbitrated layer: the costs that followed recent answers with it and without it,
    whether the next answer gets it, and why (``trying``, ``best``, ``exploring``, ``kept``)."""

    layer: str
    with_costs: tuple[int, ...]
    without_costs: tuple[int, ...]
    applied: bool
    reason: str

    @property
    def with_mean(self) -> float | None:
        return _mean(self.with_costs)

    @property
    def without_mean(self) -> float | None:
        return _mean(self.without_costs)


def _mean(costs: tuple[int, ...]) -> float | None:
    return sum(costs) / len(costs) if costs else None


@dataclass(frozen=True)
class Choice:
    """The layers chosen for one answer and the evidence per arbitrated layer; ``reason`` is
    ``off`` when arbitration is turned off, else ``evidence``."""

    layers: tuple[str, ...]
    evidence: tuple[LayerEvidence, ...] = ()
    reason: str = "evidence"

    @property
    def label(self) -> str:
        return " + ".join(self.layers) if self.layers else "no layer"

    def left_out(self, available: Collection[str]) -> list[str]:
        """The available layers this choice leaves out, in :data:`LAYERS` order."""
        return [layer for layer in LAYERS if layer in available and layer not in self.layers]


def decide(
    with_costs: Sequence[int],
    without_costs: Sequence[int],
    explore: float,
    min_evidence: int,
    rng: random.Random,
) -> tuple[bool, str]:
    """Whether to apply a layer, from the costs with and without it (see the module docstring)."""
    if len(with_costs) < min_evidence or len(without_costs) < min_evidence:
        return rng.random() < 0.5, "trying"  # a coin per layer: the layers' evidence stays apart
    better = sum(with_costs) / len(with_costs) <= sum(without_costs) / len(without_costs)
    if rng.random() < explore:
        return not better, "exploring"
    return better, "best"


def evidence(
    user: User,
    base: Collection[str],
    optional: Sequence[str],
    adapter_label: str,
    since: datetime | None,
) -> dict[str, tuple[list[int], list[int]]]:
    """Per optional layer, the costs that followed recent answers with it and without it.

    An answer counts when it had feedback and every ``base`` layer (memory, when the user has
    it: an answer of the base model says nothing about a layer); one with the adapter only when
    it was this adapter version.
    """
    window = settings.ATTUNE_ARBITRATION_WINDOW
    liked = Rating.objects.filter(interaction=OuterRef("pk"), thumbs_up=True)
    answers = (
        Interaction.objects.filter(user=user, layers__contains=list(base))
        .annotate(cost=Min("edits__distance"), liked=Exists(liked, output_field=BooleanField()))
        .order_by("-created_at", "-id")
        .values_list("layers", "adapter_version", "cost", "liked")
    )
    if since is not None:
        answers = answers.filter(created_at__gte=since)
    found: dict[str, tuple[list[int], list[int]]] = {layer: ([], []) for layer in optional}
    for layers, version, cost, was_liked in answers[: window * 8]:
        if cost is None and not was_liked:
            continue  # no feedback: says nothing
        if "adapter" in layers and version != adapter_label:
            continue
        for layer in optional:
            side = found[layer][0 if layer in layers else 1]
            if len(side) < window:
                side.append(int(cost or 0))
    return found


def choose(
    user: User,
    available: Collection[str],
    kept: Collection[str] = (),
    adapter_label: str = "",
    since: datetime | None = None,
    rng: random.Random | None = None,
    explore: float | None = None,
) -> Choice:
    """The layers to apply to the user's next answer, from ``available`` (the layers the user
    has and nobody turned off); ``kept`` layers the request keeps are never left out.
    ``explore`` overrides ``ATTUNE_ARBITRATION_EXPLORE`` (0 for a page showing the choice)."""
    everything = tuple(layer for layer in LAYERS if layer in available)
    if not settings.ATTUNE_ARBITRATION:
        return Choice(everything, reason="off")
    optional = [layer for layer in ARBITRATED if layer in available and layer not in kept]
    if not optional:
        return Choice(everything)
    base = [layer for layer in everything if layer not in ARBITRATED]
    found = evidence(user, base, optional, adapter_label, since)
    explore = settings.ATTUNE_ARBITRATION_EXPLORE if explore is None else explore
    rng = rng or random.Random()
    decided = []
    for layer in optional:
        with_costs, without_costs = found[layer]
        applied, reason = decide(
            with_costs, without_costs, explore, settings.ATTUNE_ARBITRATION_MIN_EVIDENCE, rng
        )
        decided.append(
            LayerEvidence(layer, tuple(with_costs), tuple(without_costs), applied, reason)
        )
    off = {e.layer for e in decided if not e.applied}
    return Choice(tuple(layer for layer in everything if layer not in off), tuple(decided))
