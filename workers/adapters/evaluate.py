"""How well a policy agrees with a user's held-out preferences.

A policy "prefers" the chosen answer of a pair when it gives it a higher mean log-probability per
token than the rejected one (per token, so that length alone decides nothing). The evaluation gate
compares this accuracy for a candidate adapter, the active adapter and the base model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from workers.adapters.fit import PreferencePair, ThumbExample


@torch.no_grad()
def sequence_logprobs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    completions: Sequence[str],
    per_token: bool = False,
    batch_size: int = 16,
    max_length: int = 512,
) -> torch.Tensor:
    """log p(completion | prompt) per pair, summed (or averaged per token) over the completion."""
    device = next(model.parameters()).device
    results: list[torch.Tensor] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(prompts), batch_size):
        rows, spans = [], []
        for prompt, completion in zip(
            prompts[start : start + batch_size],
            completions[start : start + batch_size],
            strict=True,
        ):
            p = tokenizer(prompt)["input_ids"]
            c = tokenizer(completion, add_special_tokens=False)["input_ids"]
            row = (p + c)[:max_length]
            rows.append(row)
            spans.append((min(len(p), len(row)), len(row)))
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logps = torch.log_softmax(logits[:, :-1], dim=-1)
        token_logps = logps.gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        for i, (begin, end) in enumerate(spans):
            span = token_logps[i, max(begin - 1, 0) : end - 1]
            total = span.sum()
            results.append(total / max(1, span.numel()) if per_token else total)
    return torch.stack(results).cpu()


def preference_accuracy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[PreferencePair],
) -> float:
    """Share of pairs whose chosen answer has the higher mean log-probability per token."""
    if not pairs:
        raise ValueError("no pairs to evaluate")
    prompts = [p.prompt for p in pairs]
    chosen = sequence_logprobs(model, tokenizer, prompts, [p.chosen for p in pairs], per_token=True)
    rejected = sequence_logprobs(
        model, tokenizer, prompts, [p.rejected for p in pairs], per_token=True
    )
    return float((chosen > rejected).float().mean())


def completion_logprobs(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, thumbs: Sequence[ThumbExample]
) -> torch.Tensor:
    """Mean log-probability per token of each thumb's completion."""
    return sequence_logprobs(
        model, tokenizer, [t.prompt for t in thumbs], [t.completion for t in thumbs], per_token=True
    )


def thumb_agreement(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    thumbs: Sequence[ThumbExample],
    reference: torch.Tensor,
) -> float:
    """Share of thumbs the policy agrees with, relative to ``reference`` (the base's log-probs):
    a liked completion should gain probability, a disliked one lose it. A tie counts half, so
    the base itself scores 0.5."""
    if not thumbs:
        raise ValueError("no thumbs to evaluate")
    delta = completion_logprobs(model, tokenizer, thumbs) - reference
    labels = torch.tensor([1.0 if t.label else -1.0 for t in thumbs])
    signed = torch.sign(delta) * labels
    return float(((signed > 0).float() + 0.5 * (signed == 0).float()).mean())
