"""Tiny models for adapter tests (random weights, built from a config; nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from core.artifacts import open_store
from workers.adapters.storage import AdapterStore

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def tiny_llama(seed: int = 0, hidden: int = 32) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=97, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


def with_random_adapters(names: dict[str, int], base: LlamaForCausalLM | None = None) -> PeftModel:
    """A tiny Llama with LoRA adapters of the given ranks, all with non-zero random A and B."""
    model: PeftModel | None = None
    for i, (name, rank) in enumerate(names.items()):
        config = LoraConfig(
            r=rank, lora_alpha=2 * rank + i, target_modules=TARGETS, init_lora_weights=False
        )
        torch.manual_seed(100 + i)
        if model is None:
            model = get_peft_model(base or tiny_llama(), config, adapter_name=name)
        else:
            model.add_adapter(name, config)
    assert model is not None
    return model.eval()


def tiny_tokenizer():
    """A word-level tokenizer over a small vocabulary, with BOS/EOS/PAD (built locally)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = [
        "summarize",
        "email",
        "news",
        "short",
        "long",
        "brief",
        "bullets",
        "prose",
        "hello",
        "the",
        "a",
        "of",
        "and",
        "is",
    ]
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<s>", "</s>", "<unk>", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>",
    )  # fmt: skip


def adapter_store(tmp_path: Path) -> AdapterStore:
    """An adapter store on a private local artifact store (its own cache and scratch folder)."""
    artifacts = open_store(str(tmp_path / "artifacts"), tmp_path / "cache", 1 << 30)
    return AdapterStore(artifacts, tmp_path / "scratch")
