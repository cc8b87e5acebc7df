"""Preference vectors: the pole fit, φ's calibrated scale, and the scale applied to the poles."""

from __future__ import annotations

import itertools

import pytest
import torch
from peft.tuners.lora import LoraLayer

from core.dimensions import dimension
from tests.workers.adapters.helpers import tiny_llama, tiny_tokenizer, with_random_adapters
from workers.adapters.compose import Component, compose, preference_vector
from workers.adapters.evaluate import sequence_logprobs
from workers.adapters.fit import FitSettings, PreferencePair
from workers.adapters.vectors import (
    CALIBRATION_SCALES,
    attach_negative,
    calibrate,
    fit_vector,
    scale_lora,
)

HELDOUT = [
    PreferencePair("summarize news", " short bullets", " long prose and the hello"),
    PreferencePair("email news", " brief bullets", " long prose of the a"),
]


def deltas(model, adapter: str) -> list[torch.Tensor]:
    return [
        (m.scaling[adapter] * m.lora_B[adapter].weight @ m.lora_A[adapter].weight).detach()
        for m in model.modules()
        if isinstance(m, LoraLayer) and adapter in m.lora_A
    ]


def poles():
    """Two LoRAs on the same tiny base: θ₊ random, θ₋ another random draw."""
    positive = with_random_adapters({"default": 4})
    negative = with_random_adapters({"default": 4}, base=tiny_llama())
    for module in negative.modules():
        if isinstance(module, LoraLayer):
            torch.nn.init.normal_(module.lora_B["default"].weight, std=0.3)
    return positive, negative


def test_scale_lora_multiplies_the_adapters_update_exactly():
    model = with_random_adapters({"default": 4, "other": 4})
    before, other = deltas(model, "default"), deltas(model, "other")
    scale_lora(model, "default", 0.375)
    for b, a in zip(before, deltas(model, "default"), strict=True):
        assert torch.allclose(a, 0.375 * b, atol=1e-6)
    for b, a in zip(other, deltas(model, "other"), strict=True):  # other adapters untouched
        assert torch.equal(a, b)


def test_calibration_picks_the_scale_that_writes_both_poles_likeliest():
    tokenizer = tiny_tokenizer()
    positive, negative = poles()
    scales = (0.25, 0.5, 1.0, 2.0)
    best, curve = calibrate(positive, negative, tokenizer, HELDOUT, scales)
    assert list(curve) == ["0.25", "0.5", "1", "2"]
    assert curve[f"{best:g}"] == max(curve.values())
    assert len(set(curve.values())) > 1  # φ is not zero: the scale matters
    assert list(positive.peft_config) == ["default"] and positive.active_adapter == "default"

    # each figure is the mean log-likelihood of the positive texts at +s·φ and the negative ones
    # at −s·φ, recomputed here by hand for one scale
    attach_negative(positive, negative, "neg")
    preference_vector(positive, "default", "neg", "phi")
    prompts = [p.prompt for p in HELDOUT]
    figures = []
    for sign, texts in ((1, [p.chosen for p in HELDOUT]), (-1, [p.rejected for p in HELDOUT])):
        compose(positive, [Component("phi", sign * 0.5)], "check")
        positive.set_adapter("check")
        figures.append(float(sequence_logprobs(positive, tokenizer, prompts, texts).mean()))
    assert curve["0.5"] == pytest.approx(sum(figures) / 2, abs=1e-3)


def test_fit_vector_fits_both_poles_calibrates_and_reports_progress():
    tokenizer = tiny_tokenizer()

    def load_base():
        model = tiny_llama(hidden=32)
        model.config.vocab_size = len(tokenizer)
        return model, tokenizer

    seen: list[float] = []
    settings = FitSettings(rank=4, alpha=8, learning_rate=2e-2, max_steps=4, batch_size=4)
    fitted = fit_vector(
        load_base, dimension("tone-casual-vs-formal"), 8, settings, lambda f, _: seen.append(f)
    )
    assert fitted.scale in CALIBRATION_SCALES
    assert set(fitted.calibration) == {f"{s:g}" for s in CALIBRATION_SCALES}
    figures = fitted.figures()
    assert figures["scale"] == fitted.scale and figures["positive"]["steps"] == 4
    assert seen[-1] == pytest.approx(1.0)
    assert all(a <= b for a, b in itertools.pairwise(seen))
    for result in (fitted.positive, fitted.negative):
        assert list(result.model.peft_config) == ["default"]
