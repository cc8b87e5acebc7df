"""Process-wide settings read from the environment. Torch-free and Django-free.

``ATTUNE_VAR_DIR``: where built models and other run-time state live (default ``<repo>/var``).
``ATTUNE_BASE_MODEL``: the base causal LM, a Hugging Face hub id or local path, an artifact ref, or
the built-in offline style model (the default).
``ATTUNE_ARTIFACT_STORE`` / ``_CACHE_DIR`` / ``_CACHE_BYTES``: the one artifact store every process
reads and writes (:func:`artifact_store`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from core.artifacts import ArtifactStore, open_store

STYLE_LM_NAME = "attune/style-lm"
"""The name of the built-in offline style model (built under the var dir on first use)."""

CANDIDATES_TEMPERATURE = 1.0
"""The temperature of ``n > 1`` candidates (an A/B comparison, a reranked request) that name
none, for a model that prefers greedy decoding: greedy decoding writes the same text n times."""

REPO_ROOT = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    """The run-time state folder (database, models, adapters), absolute: ``$ATTUNE_VAR_DIR``, or
    ``<repo root>/var`` when it is unset or empty."""
    return Path(os.environ.get("ATTUNE_VAR_DIR") or REPO_ROOT / "var").resolve()


def base_model_name() -> str:
    """The base model to load: ``$ATTUNE_BASE_MODEL`` or the built-in style model."""
    return os.environ.get("ATTUNE_BASE_MODEL") or STYLE_LM_NAME


def artifact_location() -> str:
    """Where the artifact store lives: ``$ATTUNE_ARTIFACT_STORE`` (a folder, ``file://…`` or
    ``s3://bucket[/prefix]``), default ``<var dir>/artifacts``."""
    return os.environ.get("ATTUNE_ARTIFACT_STORE") or str(var_dir() / "artifacts")


def artifact_cache_dir() -> Path:
    """This node's read-through cache of the artifact store: ``$ATTUNE_ARTIFACT_CACHE_DIR``,
    default ``<var dir>/cache/artifacts`` (a remote vLLM reads composed adapters from here)."""
    return Path(os.environ.get("ATTUNE_ARTIFACT_CACHE_DIR") or var_dir() / "cache" / "artifacts")


def artifact_cache_bytes() -> int:
    """The bound of this node's cache in bytes: ``$ATTUNE_ARTIFACT_CACHE_BYTES``, default 2 GiB."""
    return int(os.environ.get("ATTUNE_ARTIFACT_CACHE_BYTES") or 2 * 1024**3)


def artifact_store() -> ArtifactStore:
    """This process's artifact store, as the environment names it now (one per setting)."""
    return _open_store(artifact_location(), str(artifact_cache_dir()), artifact_cache_bytes())


@functools.lru_cache(maxsize=8)
def _open_store(location: str, cache_dir: str, cache_bytes: int) -> ArtifactStore:
    return open_store(location, Path(cache_dir), cache_bytes)
