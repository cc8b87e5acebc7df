"""A tiny style model, built once per session in a temporary var dir (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.style_models import build_tiny_style_model


@pytest.fixture(scope="session")
def tiny_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A var dir holding a tiny build of the style model."""
    var = tmp_path_factory.mktemp("var")
    build_tiny_style_model(var)
    return var


@pytest.fixture
def tiny_env(tiny_var: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``ATTUNE_VAR_DIR`` pointing at the tiny build, with the built-in model as the base."""
    monkeypatch.setenv("ATTUNE_VAR_DIR", str(tiny_var))
    monkeypatch.delenv("ATTUNE_BASE_MODEL", raising=False)
    return tiny_var
