"""Process-wide settings from the environment: one var dir for every process."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import config


def test_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ATTUNE_BASE_MODEL", raising=False)
    monkeypatch.delenv("ATTUNE_VAR_DIR", raising=False)
    assert config.base_model_name() == config.STYLE_LM_NAME
    assert config.var_dir() == config.REPO_ROOT / "var"
    monkeypatch.setenv("ATTUNE_BASE_MODEL", "some/model")
    monkeypatch.setenv("ATTUNE_VAR_DIR", str(tmp_path))
    assert config.base_model_name() == "some/model"
    assert config.var_dir() == tmp_path


def test_an_empty_var_dir_means_the_default_and_a_relative_one_is_made_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ATTUNE_VAR_DIR", "")
    assert config.var_dir() == config.REPO_ROOT / "var"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ATTUNE_VAR_DIR", "state")
    assert config.var_dir() == tmp_path / "state"
    assert config.var_dir().is_absolute()


def test_the_embedded_database_and_the_models_share_the_var_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from attune import embedded_db

    monkeypatch.setenv("ATTUNE_VAR_DIR", str(tmp_path))
    assert embedded_db.pgdata_dir() == tmp_path / "pgdata"
