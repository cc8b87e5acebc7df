"""A tiny random BERT and a character-level tokenizer, built locally (no download, milliseconds)."""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CHARS = string.ascii_lowercase + string.digits + ".,!?-:;'()"


def tiny_tokenizer() -> BertTokenizer:
    """WordPiece over single characters: every ASCII word splits into its letters."""
    tokens = SPECIALS + list(CHARS) + [f"##{c}" for c in CHARS]
    return BertTokenizer(vocab={t: i for i, t in enumerate(tokens)})


def tiny_bert(vocab_size: int, layers: int = 2) -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
    )
    return BertModel(config).eval()


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a saved tiny BERT and its tokenizer (loadable by ``AutoModel``)."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = tiny_tokenizer()
    tiny_bert(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread (and do not spin on a busy shared machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
