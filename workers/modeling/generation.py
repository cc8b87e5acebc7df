"""Generation with the base model: the right prompt for the tokenizer, batched, seeded.

The style model is prompted with ``build_prompt`` (tags + task + context); any other model with
``build_instruction`` (the same request in words), through its chat template when it has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from core.prompting import (
    Preference,
    as_tags,
    build_instruction,
    build_prompt,
    is_style_tokenizer,
)


@dataclass(frozen=True)
class GenerationRequest:
    """What to write: the task, the context, and the preference (tags, a phrase, or none)."""

    task: str
    context_text: str
    preference: Preference = None
    source: str | None = None


def uses_chat_template(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether prompts for this tokenizer go through its chat template."""
    return not is_style_tokenizer(tokenizer) and bool(getattr(tokenizer, "chat_template", None))


def format_prompt(tokenizer: PreTrainedTokenizerBase, request: GenerationRequest) -> str:
    """The prompt text for ``request`` as this tokenizer's model expects it."""
    if is_style_tokenizer(tokenizer):
        return build_prompt(request.task, request.context_text, as_tags(request.preference))
    instruction = build_instruction(
        request.task, request.context_text, request.preference, request.source
    )
    if uses_chat_template(tokenizer):
        messages = [{"role": "user", "content": instruction}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(text)
    return f"{instruction}\n\nResponse:\n"


def encode_prompts(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Left-padded ids and attention mask (a chat template already holds its special tokens)."""
    add_special = not uses_chat_template(tokenizer)
    rows = [tokenizer(p, add_special_tokens=add_special)["input_ids"] for p in prompts]
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return {"input_ids": ids, "attention_mask": mask}


@torch.inference_mode()
def generate_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    requests: Sequence[GenerationRequest],
    max_new_tokens: int = 256,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 32,
) -> list[str]:
    """One response per request: greedy by default, or sampled reproducibly from ``seed``."""
    torch.manual_seed(seed)
    texts: list[str] = []
    for start in range(0, len(requests), batch_size):
        prompts = [format_prompt(tokenizer, r) for r in requests[start : start + batch_size]]
        batch = {k: v.to(model.device) for k, v in encode_prompts(tokenizer, prompts).items()}
        sampling = {"temperature": temperature, "top_p": top_p} if do_sample else {}
        output = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            pad_token_id=tokenizer.pad_token_id,
            **sampling,
        )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        texts.extend(text.strip() for text in decoded)
    return texts


def generate_text(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    request: GenerationRequest,
    max_new_tokens: int = 256,
    do_sample: bool = False,
    seed: int = 0,
) -> str:
    """One response for one request."""
    return generate_texts(
        model, tokenizer, [request], max_new_tokens=max_new_tokens, do_sample=do_sample, seed=seed
    )[0]
