"""TRL fits on a tiny model: DPO moves the policy toward the chosen answers; KTO runs; progress."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch

from tests.workers.adapters.helpers import tiny_llama, tiny_tokenizer
from workers.adapters.evaluate import preference_accuracy, sequence_logprobs
from workers.adapters.fit import FitSettings, PreferencePair, ThumbExample, fit_dpo, fit_kto

PAIRS = [
    PreferencePair("summarize news", " short bullets", " long prose and the hello"),
    PreferencePair("email news", " brief bullets", " long prose of the a"),
] * 4
FAST = FitSettings(rank=4, alpha=8, learning_rate=2e-2, max_steps=12, batch_size=4, max_length=32)


def margin(model, tokenizer) -> float:
    chosen = sequence_logprobs(
        model, tokenizer, [p.prompt for p in PAIRS], [p.chosen for p in PAIRS]
    )
    rejected = sequence_logprobs(
        model, tokenizer, [p.prompt for p in PAIRS], [p.rejected for p in PAIRS]
    )
    return float((chosen - rejected).mean())


def test_dpo_fit_prefers_the_chosen_answers_and_reports_progress():
    tokenizer = tiny_tokenizer()
    model = tiny_llama(hidden=32)
    model.config.vocab_size = len(tokenizer)
    before = margin(model, tokenizer)
    seen: list[tuple[float, float | None]] = []
    result = fit_dpo(model, tokenizer, PAIRS, FAST, progress=lambda f, loss: seen.append((f, loss)))
    assert result.steps == 12
    assert seen[-1][0] == pytest.approx(1.0)
    assert all(a <= b for (a, _), (b, _) in itertools.pairwise(seen))
    assert result.final_loss is not None and result.final_loss < result.losses[0]
    assert margin(result.model, tokenizer) > before + 1.0
    assert preference_accuracy(result.model, tokenizer, PAIRS) == 1.0
    with result.model.disable_adapter():  # the base is untouched
        assert margin(result.model, tokenizer) == pytest.approx(before, abs=1e-4)


def test_the_sft_term_makes_the_chosen_answers_likelier_than_dpo_alone():
    """RPO: DPO alone may lower both answers; the SFT term on the chosen ones lifts them more."""
    tokenizer = tiny_tokenizer()
    prompts, chosen = [p.prompt for p in PAIRS], [p.chosen for p in PAIRS]
    base = tiny_llama(hidden=32)
    before = sequence_logprobs(base, tokenizer, prompts, chosen).mean()
    plain = fit_dpo(tiny_llama(hidden=32), tokenizer, PAIRS, replace(FAST, sft_weight=0.0))
    rpo = fit_dpo(tiny_llama(hidden=32), tokenizer, PAIRS, replace(FAST, sft_weight=1.0))
    plain_chosen = sequence_logprobs(plain.model, tokenizer, prompts, chosen).mean()
    rpo_chosen = sequence_logprobs(rpo.model, tokenizer, prompts, chosen).mean()
    assert rpo_chosen > before + 1.0 and rpo_chosen > plain_chosen + 0.1
    assert rpo.losses[0] > plain.losses[0]  # the SFT term adds to the loss
    assert rpo.metrics["rewards/accuracies"] == 1.0 and rpo.metrics["rewards/margins"] > 0


def test_kto_fit_runs_on_thumbs():
    tokenizer = tiny_tokenizer()
    examples = [
        ThumbExample("summarize news", " short bullets", True),
        ThumbExample("summarize news", " long prose", False),
    ] * 4
    result = fit_kto(tiny_llama(), tokenizer, examples, FAST)
    assert result.steps == 12 and result.losses


def test_kto_needs_both_labels():
    with pytest.raises(ValueError, match="thumbs-up and one thumbs-down"):
        fit_kto(tiny_llama(), tiny_tokenizer(), [ThumbExample("p", "c", True)], FAST)


def test_dpo_needs_pairs():
    with pytest.raises(ValueError, match="at least one"):
        fit_dpo(tiny_llama(), tiny_tokenizer(), [], FAST)


def test_sequence_logprobs_sum_over_the_completion_only():
    tokenizer = tiny_tokenizer()
    model = tiny_llama()
    model.config.vocab_size = len(tokenizer)
    one = sequence_logprobs(model, tokenizer, ["summarize news"], [" short"])
    two = sequence_logprobs(model, tokenizer, ["summarize news"], [" short bullets"])
    assert one.shape == (1,) and torch.all(two < one)  # one more token: lower total log-prob
