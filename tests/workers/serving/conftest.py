"""A tiny build of the style model (seconds), loaded once for the serving engine's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workers.modeling.conftest import TINY


@pytest.fixture(scope="session")
def tiny_style_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from workers.modeling.style_lm import ensure_style_lm

    return ensure_style_lm(TINY, var=tmp_path_factory.mktemp("serving-var"), progress=False)


@pytest.fixture(scope="session")
def engine(tiny_style_dir: Path):
    from workers.modeling.loader import load_base_model
    from workers.serving.engine import Engine

    model, tokenizer = load_base_model(str(tiny_style_dir), device="cpu")
    return Engine(model, tokenizer)
