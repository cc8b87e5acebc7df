"""Preference vectors: one DPO LoRA on a dimension's pairs (θ₊), one on the swapped pairs (θ₋).

φ = θ₊ − θ₋ is applied as base + Σ ηᵢ φᵢ (see ``compose``): η = 1 pushes toward the positive pole,
η = −1 toward the negative one, η = 0 is the base; a new dimension is added without retraining the
others. In the offline world a dimension is a style attribute with two poles, and its pairs are the
same context rendered at each pole (all other attributes at their defaults), with untagged prompts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from core.dimensions import Dimension
from core.prompting import build_prompt
from core.world.renderer import TASKS, render
from core.world.sources import sample_context
from core.world.styles import default_style
from workers.adapters.fit import (
    FitResult,
    FitSettings,
    PreferencePair,
    Progress,
    fit_dpo,
)

DEFAULT_VECTOR_FIT = FitSettings(learning_rate=1e-3, epochs=2, sft_weight=0.0)
"""A pole's fit is far gentler than a user adapter's, so that η = 1 means "at the pole": with the
user adapter's settings, tone, person, length and emoji are fully flipped by η = 0.25, and
format's text breaks up from η = 1.
Measured (bench adapters, 64 pairs per pole): tone flips from 0% at η = 0 to 50–64% at 0.5
and 100% at 1, the other attributes unchanged; format flips at a sharper point and is no longer
monotone past 1.5 (see README)."""


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


def fit_vector(
    load_base: Callable[[], tuple[PreTrainedModel, PreTrainedTokenizerBase]],
    dim: Dimension,
    pairs: int,
    settings: FitSettings = DEFAULT_VECTOR_FIT,
    progress: Progress | None = None,
    seed: int = 0,
) -> VectorFit:
    """Fit θ₊ on the dimension's pairs and θ₋ on the swapped pairs, each on a fresh base model."""
    data = dimension_pairs(dim, pairs, seed)

    def half(offset: float) -> Progress | None:
        if progress is None:
            return None
        return lambda done, loss: progress(offset + done / 2, loss)

    model, tokenizer = load_base()
    positive = fit_dpo(model, tokenizer, data, settings, half(0.0))
    model, tokenizer = load_base()
    negative = fit_dpo(model, tokenizer, swapped(data), settings, half(0.5))
    return VectorFit(dim, positive, negative)
