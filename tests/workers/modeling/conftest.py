"""A tiny style model, built once per session in a temporary var dir (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.modeling.style_lm import StyleLMConfig, ensure_style_lm

TINY = StyleLMConfig(
    hidden_size=32,
    num_layers=2,
    num_heads=2,
    intermediate_size=64,
    vocab_size=400,
    steps=2,
    batch_size=4,
    warmup_steps=1,
    tokenizer_examples=64,
    max_length=512,
)


@pytest.fixture(scope="session")
def tiny_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A var dir holding a tiny build of the style model."""
    var = tmp_path_factory.mktemp("var")
    ensure_style_lm(TINY, var=var, progress=False)
    return var


@pytest.fixture
def tiny_env(tiny_var: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``ATTUNE_VAR_DIR`` pointing at the tiny build, with the built-in model as the base."""
    monkeypatch.setenv("ATTUNE_VAR_DIR", str(tiny_var))
    monkeypatch.delenv("ATTUNE_BASE_MODEL", raising=False)
    return tiny_var
