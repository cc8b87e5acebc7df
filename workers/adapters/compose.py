"""Exact composition of LoRA adapters: base + user LoRA + Σ ηᵢ φᵢ as one LoRA adapter.

PEFT's ``cat`` combination stacks the adapters' A matrices (each scaled by its weight and its own
LoRA scaling) and their B matrices, so the composed adapter's update is exactly
``Σ_k w_k · s_k · B_k A_k`` (a rank ``Σ r_k`` LoRA with scaling 1). ``linear``, TIES and DARE are
not exact (cross terms between A and B), so they are never used here.

A preference vector φ = θ₊ − θ₋ is kept in LoRA form: the ``cat`` of its two LoRAs with weights
+1 and −1 (rank 2r).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from peft import PeftModel


@dataclass(frozen=True)
class Component:
    """One adapter already loaded in the model, and its weight in the sum."""

    adapter: str
    weight: float


def _check_exactness(model: PeftModel, adapters: Sequence[str]) -> None:
    for name in adapters:
        if name not in model.peft_config:
            raise KeyError(f"adapter {name!r} is not loaded")
        config = model.peft_config[name]
        if getattr(config, "use_rslora", False) or getattr(config, "use_dora", False):
            raise ValueError(f"adapter {name!r} uses rsLoRA/DoRA, which cat composition can't sum")


def compose(model: PeftModel, components: Sequence[Component], name: str) -> str | None:
    """Write the weighted sum of ``components`` into adapter ``name`` (replacing it if present).

    Components with weight 0 are left out; returns None when nothing remains (the base model).
    The model's active adapter is not changed.
    """
    kept = [c for c in components if c.weight != 0.0]
    if name in model.peft_config:
        model.delete_adapter(name)
    if not kept:
        return None
    _check_exactness(model, [c.adapter for c in kept])
    model.add_weighted_adapter(
        adapters=[c.adapter for c in kept],
        weights=[float(c.weight) for c in kept],
        adapter_name=name,
        combination_type="cat",
    )
    return name


def preference_vector(model: PeftModel, positive: str, negative: str, name: str) -> str:
    """φ = θ₊ − θ₋ as one LoRA adapter ``name`` (the two adapters stay loaded)."""
    result = compose(model, [Component(positive, 1.0), Component(negative, -1.0)], name)
    assert result is not None
    return result
