"""What personalizes one generation for a user: their active adapter, their η for the active
preference vectors, their CIPHER preference for this context, and their persona.

Called by the serving process (``workers.serving``): CIPHER retrieval with a text embeds it with
torch there. Torch-free to import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from apps.accounts.models import User
from apps.adapters import selectors as adapter_selectors
from apps.feedback.services import flatten_messages
from apps.memory.models import MemoryEntry
from apps.personas.selectors import persona_of
from core.serving import AdapterRef, Plan, VectorRef


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
    return adapter, vectors


def plan_for(user: User, messages: Sequence[Mapping[str, str]], personalized: bool = True) -> Plan:
    """Everything that personalizes a generation for ``user`` in the context of ``messages``.

    CIPHER retrieval (``apps.memory.selectors.preference_for``) embeds the context, so it runs
    only for a user who has memory entries. It never fails the generation: when the inference
    backend cannot aggregate, the plan uses the first ranked entry and ``memory_degraded`` says
    why (the answer's ``attune`` block reports it).
    """
    if not personalized:
        return Plan(user.pk, False)
    adapter, vectors = weights_for(user)
    preference, memory_ids, degraded = "", (), ""
    if MemoryEntry.objects.filter(user=user, embedding__isnull=False).exists():
        from apps.memory.selectors import preference_for

        conditioning = preference_for(user, flatten_messages(list(messages)))
        preference, memory_ids = conditioning.preference, tuple(conditioning.memory_ids)
        degraded = conditioning.degraded
    persona = persona_prompt(user)
    return Plan(user.pk, True, adapter, vectors, preference, memory_ids, persona, degraded)
