"""A tiny build of the style model (seconds), loaded once for the serving engine's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.style_models import build_tiny_style_model


@pytest.fixture(scope="session")
def tiny_style_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_style_model(tmp_path_factory.mktemp("serving-var"))


@pytest.fixture(scope="session")
def engine(tiny_style_dir: Path):
    from workers.modeling.loader import load_base_model
    from workers.serving.engine import Engine

    model, tokenizer = load_base_model(str(tiny_style_dir), device="cpu")
    return Engine(model, tokenizer)
