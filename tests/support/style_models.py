"""A tiny build of the built-in style model for tests (well under a second to train).

It writes poor text, but it is a real ``attune/style-lm`` checkpoint in Hugging Face format, so
the loader, the serving engine and the adapters treat it like the full model. Build it in a
temporary var dir and point a process at it with ``ATTUNE_VAR_DIR`` (and no
``ATTUNE_BASE_MODEL``): nothing then reads the repository's ``var/models``.

    from tests.support.style_models import tiny_style_var  # the session fixture, in a conftest
"""

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
    prose_paragraphs=40,
)


def build_tiny_style_model(var: Path) -> Path:
    """The tiny style model under ``var`` (``var/models/style-lm-v1``), built when missing."""
    return ensure_style_lm(TINY, var=var, progress=False)


@pytest.fixture(scope="session")
def tiny_style_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A var dir holding the tiny style model, built once per test session."""
    var = tmp_path_factory.mktemp("tiny-style-var")
    build_tiny_style_model(var)
    return var
