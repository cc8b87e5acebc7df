"""Exported JSONL files train for real: one step of TRL's DPOTrainer and KTOTrainer each.

The model is a 2-layer Llama with random weights and a word-level tokenizer built here, both saved
under tmp_path: nothing is downloaded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.support.factories import InteractionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


def build_tiny_model(texts: list[str], folder: Path) -> Path:
    """A tokenizer over the words of ``texts`` and a random 2-layer Llama, saved to ``folder``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = sorted({w for text in texts for w in text.split()})
    vocab = {token: i for i, token in enumerate(SPECIALS + words)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
        eos_token="</s>",
    )  # fmt: skip
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
        pad_token_id=0, bos_token_id=2, eos_token_id=3,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def export(client, kind: str, path: Path) -> Path:
    response = client.get(f"/api/export/{kind}")
    assert response.status_code == 200
    path.write_bytes(b"".join(response.streaming_content))
    return path


def load_jsonl(path: Path, cache: Path):
    from datasets import load_dataset

    return load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache))


def training_args(config_class: type, out: Path, **extra: object):
    return config_class(
        output_dir=str(out), max_steps=1, per_device_train_batch_size=2, report_to=[],
        use_cpu=True, save_strategy="no", logging_steps=1, max_length=64, **extra,
    )  # fmt: skip


@pytest.fixture
def feedback(client_for, user):
    """Interactions of the user with edits and ratings made through the API."""
    client = client_for(user)
    outputs = ["the council met on monday", "the tram line will be longer",
               "the mayor spoke to the press", "a new park opens in june"]  # fmt: skip
    for n, output in enumerate(outputs):
        interaction = InteractionFactory(user=user, prompt=f"summarize story {n}", output=output)
        edited = f"big news ! {output} !"
        client.post("/api/edits", {"interaction": interaction.pk, "edited": edited}, format="json")
        rating = {"interaction": interaction.pk, "thumbs": "up" if n % 2 else "down"}
        client.post("/api/ratings", rating, format="json")
    return client


def test_dpo_export_trains_one_step_of_dpo(feedback, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    dataset = load_jsonl(export(feedback, "dpo", tmp_path / "dpo.jsonl"), tmp_path / "cache")
    assert dataset.column_names == ["prompt", "chosen", "rejected"] and len(dataset) == 4
    texts = [row[k] for row in dataset for k in ("prompt", "chosen", "rejected")]
    folder = build_tiny_model(texts, tmp_path / "model")
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(folder),
        args=training_args(DPOConfig, tmp_path / "out"),
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(folder),
    )
    result = trainer.train()
    assert trainer.state.global_step == 1
    assert math.isfinite(result.training_loss)


def test_kto_export_trains_one_step_of_kto(feedback, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import KTOConfig, KTOTrainer

    path = export(feedback, "kto", tmp_path / "kto.jsonl")
    assert {json.loads(line)["label"] for line in path.read_text().splitlines()} == {True, False}
    dataset = load_jsonl(path, tmp_path / "cache")
    assert dataset.column_names == ["prompt", "completion", "label"] and len(dataset) == 4
    texts = [row[k] for row in dataset for k in ("prompt", "completion")]
    folder = build_tiny_model(texts, tmp_path / "model")
    trainer = KTOTrainer(
        model=AutoModelForCausalLM.from_pretrained(folder),
        args=training_args(KTOConfig, tmp_path / "out"),
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(folder),
    )
    result = trainer.train()
    assert trainer.state.global_step == 1
    assert math.isfinite(result.training_loss)
