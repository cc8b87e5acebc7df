"""Process-wide settings read from the environment. Torch-free and Django-free.

``ATTUNE_VAR_DIR``: where built models and other run-time state live (default ``<repo>/var``).
``ATTUNE_BASE_MODEL``: the base causal LM, a Hugging Face hub id or local path, or the built-in
offline style model (the default).
"""

from __future__ import annotations

import os
from pathlib import Path

STYLE_LM_NAME = "attune/style-lm"
"""The name of the built-in offline style model (built under the var dir on first use)."""

REPO_ROOT = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    """The run-time state folder (database, models, adapters), absolute: ``$ATTUNE_VAR_DIR``, or
    ``<repo root>/var`` when it is unset or empty."""
    return Path(os.environ.get("ATTUNE_VAR_DIR") or REPO_ROOT / "var").resolve()


def base_model_name() -> str:
    """The base model to load: ``$ATTUNE_BASE_MODEL`` or the built-in style model."""
    return os.environ.get("ATTUNE_BASE_MODEL") or STYLE_LM_NAME
