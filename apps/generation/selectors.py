"""What personalizes one generation for a user: their active adapter, their η for the active
preference vectors, their CIPHER preference for this context, and their persona, less the layers
the user (:class:`apps.generation.models.LayerSettings`) or the request turned off.

Called by the serving process (``workers.serving``): CIPHER retrieval with a text embeds it with
torch there. Torch-free to import.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apps.accounts.models import User
from apps.adapters import selectors as adapter_selectors
from apps.feedback.services import flatten_messages
from apps.generation import arbitration
from apps.generation.models import LayerSettings
from apps.memory.models import MemoryEntry
from apps.personas.selectors import persona_of
from core.serving import (
    LAYERS,
    OFF_BY_ARBITRATION,
    OFF_BY_REQUEST,
    OFF_BY_USER,
    AdapterRef,
    Plan,
    VectorRef,
)


@dataclass(frozen=True)
class LayerState:
    """One layer switch as pages show it: its name, whether it is on, what it does."""

    name: str
    on: bool
    description: str


def layer_settings(user: User) -> LayerSettings:
    """The user's layer switches; an unsaved all-on row when they never changed them."""
    return LayerSettings.objects.owned_by(user).first() or LayerSettings(user=user)


def layer_states(user: User) -> list[LayerState]:
    """The user's switches in :data:`core.serving.LAYERS` order, each with its description."""
    switches = layer_settings(user).switches()
    return [LayerState(name, switches[name], LayerSettings.description(name)) for name in LAYERS]


def layers_off(user: User, requested_off: Collection[str] = ()) -> dict[str, str]:
    """The layers off for one request, each with who turned it off: the user's setting wins
    the attribution, since the layer would be off without the request too."""
    switches = layer_settings(user).switches()
    off = {layer: OFF_BY_USER for layer in LAYERS if not switches[layer]}
    for layer in LAYERS:
        if layer in requested_off:
            off.setdefault(layer, OFF_BY_REQUEST)
    return off


def persona_text(text: str, attributes: Mapping[str, object] | None = None) -> str:
    """A persona profile as one readable text (free text, then ``key: value`` attributes)."""
    lines = [text.strip()] if text.strip() else []
    lines += [f"{key}: {value}" for key, value in sorted((attributes or {}).items())]
    return "\n".join(lines)


def persona_prompt(user: User) -> str:
    """The user's persona profile as text for the prompt (empty without one)."""
    persona = persona_of(user)
    if persona is None:
        return ""
    return persona_text(persona.text, persona.attributes)


def weights_for(user: User) -> tuple[AdapterRef | None, tuple[VectorRef, ...]]:
    """The user's active adapter and the active vectors they weigh with a non-zero η."""
    _, adapter, vectors = _weights(user)
    return adapter, vectors


def _weights(user: User) -> tuple[Any, AdapterRef | None, tuple[VectorRef, ...]]:
    """:func:`weights_for`, with the active adapter version's row."""
    active = adapter_selectors.active_version(user)
    adapter = (
        AdapterRef(active.label, active.storage_path, active.base_model, active.base_fingerprint)
        if active is not None
        else None
    )
    shared = list(adapter_selectors.active_vectors().order_by("name"))
    etas = adapter_selectors.etas(user, {v.name for v in shared})
    vectors = tuple(
        VectorRef(
            v.name,
            v.version,
            v.positive_path,
            v.negative_path,
            v.base_model,
            v.base_fingerprint,
            float(etas[v.name]),
        )
        for v in shared
        if etas.get(v.name)
    )
    return active, adapter, vectors


def plan_for(
    user: User,
    messages: Sequence[Mapping[str, str]],
    personalized: bool = True,
    requested_off: Collection[str] = (),
    requested_kept: Collection[str] = (),
) -> Plan:
    """Everything that personalizes a generation for ``user`` in the context of ``messages``.

    A layer the user switched off, or ``requested_off`` by this request, is not read at all:
    memory off retrieves nothing (no memory ids), adapter off loads no LoRA, vectors off no η,
    persona off no persona text; ``Plan.layers_off`` says which and why. Of the rest, layer
    arbitration (``apps.generation.arbitration``) may leave the weights layers out for this user
    by the evidence of their edits, except those ``requested_kept``.
    CIPHER retrieval (``apps.memory.selectors.preference_for``) embeds the context, so it runs
    only for a user who has memory entries. It never fails the generation: when the inference
    backend cannot aggregate, the plan uses the first ranked entry and ``memory_degraded`` says
    why (the answer's ``attune`` block reports it).
    """
    if not personalized:
        return Plan(user.pk, False)
    off = layers_off(user, requested_off)
    hand = at_hand(user, off)
    choice = arbitration.choose(
        user, hand.available, requested_kept, hand.adapter_label, hand.adapter_since
    )
    for layer in choice.left_out(hand.available):
        off[layer] = OFF_BY_ARBITRATION
    adapter = None if "adapter" in off else hand.adapter
    vectors = () if "vectors" in off else hand.vectors
    preference, memory_ids, degraded, embedding = "", (), "", ()
    if hand.has_memory:
        from apps.memory.selectors import embed_context, preference_for

        embedding = tuple(embed_context(flatten_messages(list(messages))))
        conditioning = preference_for(user, embedding)
        preference, memory_ids = conditioning.preference, tuple(conditioning.memory_ids)
        degraded = conditioning.degraded
    return Plan(
        user.pk, True, adapter, vectors, preference, memory_ids, hand.persona, degraded,
        tuple(off.items()), embedding,
    )  # fmt: skip


@dataclass(frozen=True)
class AtHand:
    """The layers a user has, less those turned ``off``: what a plan may apply."""

    adapter: AdapterRef | None
    adapter_since: datetime | None  # when the active adapter version became active
    vectors: tuple[VectorRef, ...]
    persona: str
    has_memory: bool

    @property
    def adapter_label(self) -> str:
        return self.adapter.label if self.adapter else ""

    @property
    def available(self) -> set[str]:
        present = {
            "memory": self.has_memory, "persona": bool(self.persona),
            "adapter": self.adapter is not None, "vectors": bool(self.vectors),
        }  # fmt: skip
        return {layer for layer, here in present.items() if here}


def at_hand(user: User, off: Mapping[str, str]) -> AtHand:
    """What the user has of each layer not in ``off`` (nothing is read for a layer that is)."""
    active, adapter, vectors = (
        _weights(user) if not {"adapter", "vectors"} <= off.keys() else (None, None, ())
    )
    active = active if "adapter" not in off else None
    has_memory = (
        "memory" not in off
        and MemoryEntry.objects.filter(user=user, embedding__isnull=False).exists()
    )
    return AtHand(
        adapter if active else None,
        (active.activated_at or active.created_at) if active else None,
        () if "vectors" in off else vectors,
        persona_prompt(user) if "persona" not in off else "",
        has_memory,
    )


def arbitration_of(user: User) -> arbitration.Choice:
    """The layers arbitration applies to the user's next answer (without exploring) and the
    evidence per arm, for the user's page and the console."""
    hand = at_hand(user, layers_off(user))
    return arbitration.choose(
        user, hand.available, (), hand.adapter_label, hand.adapter_since, explore=0.0
    )
