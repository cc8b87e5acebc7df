"""One loader for the built-in style model and any HF causal LM; prompting and generation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from core import config as attune_config
from core.prompting import build_prompt, is_style_tokenizer
from workers.modeling.generation import (
    GenerationRequest,
    format_prompt,
    generate_text,
    generate_texts,
)
from workers.modeling.loader import load_base_model, resolve_model_path
from workers.modeling.style_lm import style_lm_dir

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _tiny_hf_model(folder: Path, chat: bool) -> Path:
    """A 1-layer GPT-2 with a word-level tokenizer, saved like any hub checkpoint."""
    words = ["<unk>", "</s>", "the", "a", "of", "to", "and", "in", "is", "it"]
    vocab = {w: i for i, w in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="</s>", unk_token="<unk>"
    )
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    config = GPT2Config(vocab_size=len(vocab), n_positions=512, n_embd=16, n_layer=1, n_head=2)
    config.eos_token_id = config.bos_token_id = 1
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_builtin_name_loads_the_cached_style_model(tiny_env: Path) -> None:
    assert resolve_model_path() == str(style_lm_dir(tiny_env))
    model, tokenizer = load_base_model(device="cpu")
    assert is_style_tokenizer(tokenizer)
    assert not model.training
    request = GenerationRequest("summarize", "Some context.", {"length": "short"})
    assert format_prompt(tokenizer, request) == build_prompt(
        "summarize", "Some context.", {"length": "short"}
    )
    texts = generate_texts(model, tokenizer, [request, request], max_new_tokens=5)
    assert len(texts) == 2 and texts[0] == texts[1]
    sampled = generate_texts(model, tokenizer, [request], max_new_tokens=5, do_sample=True, seed=3)
    assert sampled == generate_texts(
        model, tokenizer, [request], max_new_tokens=5, do_sample=True, seed=3
    )


def test_lora_attaches_to_the_style_model(tiny_env: Path) -> None:
    model, tokenizer = load_base_model(attune_config.STYLE_LM_NAME, device="cpu")
    lora = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert lora.get_nb_trainable_parameters()[0] > 0
    batch = tokenizer(["<task=summarize><context>x<response>"], return_tensors="pt")
    assert lora(**batch).logits.shape[-1] == len(tokenizer)


@pytest.mark.parametrize("chat", [True, False])
def test_a_local_hf_model_loads_by_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chat: bool
) -> None:
    folder = _tiny_hf_model(tmp_path / "tiny-gpt2", chat)
    monkeypatch.setenv("ATTUNE_BASE_MODEL", str(folder))
    model, tokenizer = load_base_model(device="cpu")
    assert isinstance(model, GPT2LMHeadModel)
    assert tokenizer.pad_token is not None
    request = GenerationRequest("email", "the a of", "brief, no emojis", source="news")
    prompt = format_prompt(tokenizer, request)
    assert "Write it in this style: brief, no emojis." in prompt
    assert prompt.startswith("<|user|>Write an email") == chat
    assert prompt.endswith("<|assistant|>" if chat else "Response:\n")
    assert isinstance(generate_text(model, tokenizer, request, max_new_tokens=3), str)
