from __future__ import annotations

import pytest

from tests.support.factories import EditFactory, InteractionFactory


@pytest.fixture
def tiny_base_model(tmp_path, monkeypatch, settings):
    """A tiny random Llama + word-level tokenizer saved locally and named as the base model."""
    from tests.workers.adapters.helpers import tiny_llama, tiny_tokenizer

    folder = tmp_path / "tiny-base"
    tokenizer = tiny_tokenizer()
    model = tiny_llama(hidden=32)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    monkeypatch.setenv("ATTUNE_BASE_MODEL", str(folder))
    settings.ATTUNE_ADAPTER_ROOT = tmp_path / "adapters"
    settings.ATTUNE_FIT = {
        "rank": 4,
        "alpha": 8,
        "learning_rate": 2e-2,
        "epochs": 3,
        "batch_size": 4,
    }
    settings.ATTUNE_VECTOR_FIT = {}
    return folder


def give_pairs(user, count: int) -> None:
    """``count`` edits that prefer short bullet answers to long prose."""
    for i in range(count):
        interaction = InteractionFactory(
            user=user, prompt=f"summarize news {'a ' * (i % 3)}", output="long prose of the a"
        )
        EditFactory(interaction=interaction, edited="short bullets")
