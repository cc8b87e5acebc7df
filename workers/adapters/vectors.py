"""Preference vectors: one DPO LoRA on a dimension's pairs (θ₊), one on the swapped pairs (θ₋).

φ = θ₊ − θ₋ is applied as base + Σ ηᵢ φᵢ (see ``compose``): η = 1 pushes toward the positive pole,
η = −1 toward the negative one, η = 0 is the base; a new dimension is added without retraining the
others. In the offline world a dimension is a style attribute with two poles, and its pairs are the
same context rendered at each pole (all other attributes at their defaults), with untagged prompts.

**Calibration** (:func:`calibrate`): how far φ moves the model depends on the dimension and the
model (on the built-in model one fit setting left tone short of its pole at η = 1 while format,
question and emoji were past theirs at 0.5 and broke up at 1). So after the fit, the scale ``s``
at which ``base + s·φ`` and ``base − s·φ`` write held-out texts of the two poles likeliest is
found on a grid, and both poles' LoRA B matrices are multiplied by it: the stored vector is
``s·φ``, and η = ±1 means "as close to that pole as this vector gets", for every dimension and
model alike.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from peft import PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from core.dimensions import Dimension
from core.prompting import build_prompt
from core.world.renderer import TASKS, render
from core.world.sources import sample_context
from core.world.styles import default_style
from workers.adapters.compose import Component, compose, preference_vector
from workers.adapters.evaluate import sequence_logprobs
from workers.adapters.fit import (
    FitResult,
    FitSettings,
    PreferencePair,
    Progress,
    fit_dpo,
)

DEFAULT_VECTOR_FIT = FitSettings(learning_rate=2e-3, epochs=2, sft_weight=1.0)
"""A pole's fit: half a user adapter's epochs, with the same SFT term on the chosen answers.
Plain DPO (the earlier default, lr 1e-3) left the built-in copy model's poles writing broken text
(tone's θ₊ 0% casual, its φ 0% at every η); with the SFT term each pole writes its own side
(``bench adapters``). How far φ then reaches is set by :func:`calibrate`."""

CALIBRATION_SCALES = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 1.0, 1.25, 1.5, 2.0)
CALIBRATION_PAIRS = 16
_NEGATIVE, _PHI, _TRIAL = "vector-negative", "vector-phi", "vector-trial"


def dimension_pairs(dim: Dimension, count: int, seed: int = 0) -> list[PreferencePair]:
    """``count`` pairs preferring the positive pole: same context and task, untagged prompt."""
    rng = random.Random(f"vector:{dim.name}:{seed}")
    pairs = []
    for _ in range(count):
        context = sample_context(rng)
        task = rng.choice(TASKS)
        style = default_style()
        pos = render(context, task, {**style, dim.attribute: dim.positive})
        neg = render(context, task, {**style, dim.attribute: dim.negative})
        pairs.append(PreferencePair(build_prompt(task, context.text), pos, neg))
    return pairs


def swapped(pairs: list[PreferencePair]) -> list[PreferencePair]:
    """The label-swapped pairs (chosen and rejected exchanged)."""
    return [PreferencePair(p.prompt, p.rejected, p.chosen) for p in pairs]


@dataclass
class VectorFit:
    dimension: Dimension
    positive: FitResult
    negative: FitResult
    scale: float = 1.0  # already multiplied into both poles' LoRA B matrices
    calibration: dict[str, float] = field(default_factory=dict)  # scale -> held-out log-lik

    def figures(self) -> dict[str, object]:
        return {
            "positive": self.positive.figures(),
            "negative": self.negative.figures(),
            "scale": self.scale,
            "calibration": self.calibration,
        }


def fit_vector(
    load_base: Callable[[], tuple[PreTrainedModel, PreTrainedTokenizerBase]],
    dim: Dimension,
    pairs: int,
    settings: FitSettings = DEFAULT_VECTOR_FIT,
    progress: Progress | None = None,
    seed: int = 0,
) -> VectorFit:
    """Fit θ₊ on the dimension's pairs and θ₋ on the swapped pairs, each on a fresh base model,
    then calibrate φ's scale on held-out pairs (another seed's contexts)."""
    data = dimension_pairs(dim, pairs, seed)

    def part(offset: float, share: float) -> Progress | None:
        if progress is None:
            return None
        return lambda done, loss: progress(offset + done * share, loss)

    model, tokenizer = load_base()
    positive = fit_dpo(model, tokenizer, data, settings, part(0.0, 0.45))
    model, tokenizer = load_base()
    negative = fit_dpo(model, tokenizer, swapped(data), settings, part(0.45, 0.45))
    heldout = dimension_pairs(dim, CALIBRATION_PAIRS, seed + 1)
    scale, curve = calibrate(positive.model, negative.model, tokenizer, heldout)
    for result in (positive, negative):
        scale_lora(result.model, "default", scale)
    if progress is not None:
        progress(1.0, positive.final_loss)
    return VectorFit(dim, positive, negative, scale, curve)


def attach_negative(positive: PeftModel, negative: PeftModel, name: str = _NEGATIVE) -> str:
    """Load ``negative``'s ``default`` adapter into ``positive`` as ``name`` (same base)."""
    state = {k: v for k, v in negative.state_dict().items() if "lora_" in k}
    if name in positive.peft_config:
        positive.delete_adapter(name)
    positive.add_adapter(name, negative.peft_config["default"])
    renamed = {k.replace(".default.", f".{name}."): v for k, v in state.items()}
    positive.load_state_dict(renamed, strict=False)
    return name


@torch.no_grad()
def calibrate(
    positive: PeftModel,
    negative: PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    heldout: Sequence[PreferencePair],
    scales: Sequence[float] = CALIBRATION_SCALES,
) -> tuple[float, dict[str, float]]:
    """The scale ``s`` of φ = θ₊ − θ₋ whose ``base + s·φ`` writes the held-out positive texts and
    ``base − s·φ`` the negative ones likeliest (mean log-likelihood of the two, per pair), and
    that figure for every scale tried. ``positive`` is left with its ``default`` adapter active
    and nothing else loaded."""
    attach_negative(positive, negative)
    preference_vector(positive, "default", _NEGATIVE, _PHI)
    prompts = [p.prompt for p in heldout]
    curve: dict[str, float] = {}
    poles = ((1.0, [p.chosen for p in heldout]), (-1.0, [p.rejected for p in heldout]))
    for scale in scales:
        likelihood = 0.0
        for sign, texts in poles:
            compose(positive, [Component(_PHI, sign * scale)], _TRIAL)
            positive.set_adapter(_TRIAL)
            likelihood += float(sequence_logprobs(positive, tokenizer, prompts, texts).mean())
            positive.set_adapter("default")  # the next trial replaces this one
        curve[f"{scale:g}"] = round(likelihood / 2, 3)
    for name in (_TRIAL, _PHI, _NEGATIVE):
        positive.delete_adapter(name)
    best = max(curve, key=lambda key: curve[key])
    return float(best), curve


@torch.no_grad()
def scale_lora(model: PeftModel, adapter: str, scale: float) -> None:
    """Multiply the adapter's update Σ B·A by ``scale`` (its B matrices, in place)."""
    for module in model.modules():
        lora_b = getattr(module, "lora_B", None)
        if lora_b is not None and adapter in lora_b:
            lora_b[adapter].weight.mul_(scale)
