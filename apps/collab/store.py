"""A version's files, and a torch-free view of its embeddings artifact.

A training run writes its version's folder in this node's scratch folder
(``ATTUNE_COPL_ROOT/vNNNN``): ``embeddings/`` (``embeddings.safetensors`` + ``meta.json``, by
``workers.collab.gnn.save_embeddings``) and ``reward/`` (``adapter.safetensors`` + ``config.json``,
``workers.collab.reward_artifacts.save_reward_model``), then publishes it to the artifact store
(:mod:`core.artifacts`); the version records the ref, and every reader on any node fetches it from
there. Safetensors and JSON only: a pickle file is refused. The web side reads the embeddings with
``safetensors.numpy`` (no torch), cached per process.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from django.conf import settings

from apps.collab.models import CollabModelVersion
from core import config
from core.caching import NewestVersionCache
from core.errors import ArtifactError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
EMBEDDINGS = "embeddings"
REWARD = "reward"


def folder_for(version_number: int) -> Path:
    """The scratch folder where a run writes version ``version_number`` (not created)."""
    return Path(settings.ATTUNE_COPL_ROOT).resolve() / f"v{version_number:04d}"


@dataclass(frozen=True)
class VersionFiles:
    """The files of one version: ``embeddings/`` and ``reward/`` in its folder."""

    folder: Path

    @property
    def embeddings(self) -> Path:
        return self.folder / EMBEDDINGS

    @property
    def reward(self) -> Path:
        return self.folder / REWARD

    def publish(self) -> str:
        """Put the written folder in the artifact store, remove it here; returns the ref (what
        the version records)."""
        ref = config.artifact_store().put(self.folder)
        shutil.rmtree(self.folder)
        return ref


def version_dir(version: CollabModelVersion) -> Path:
    """This node's copy of a trained version's folder, from the artifact store (raises
    :class:`ArtifactError` for a version without files, an unknown ref or a refused folder)."""
    if not version.storage_path:
        raise ArtifactError(f"{version.label} has no files (status {version.status})")
    try:
        path = config.artifact_store().fetch(version.storage_path)
    except ArtifactError as err:
        raise ArtifactError(f"{version.label}: {err}") from err
    for file in path.rglob("*"):
        if file.suffix in PICKLE_SUFFIXES:
            raise ArtifactError(f"{version.label}: refusing pickle file {file.name}")
    return path


@dataclass(frozen=True)
class EmbeddingsArtifact:
    """User and response embeddings of one version, as numpy arrays (rows L2-normalized users)."""

    user_ids: tuple[int, ...]
    users: np.ndarray
    text_keys: tuple[str, ...]
    responses: np.ndarray
    chosen_edges: np.ndarray

    @cached_property
    def text_index(self) -> dict[str, int]:
        return {key: i for i, key in enumerate(self.text_keys)}

    @cached_property
    def user_index(self) -> dict[int, int]:
        return {user: i for i, user in enumerate(self.user_ids)}


def load_embeddings(path: Path) -> EmbeddingsArtifact:
    """Read ``embeddings.safetensors`` + ``meta.json`` without torch."""
    from safetensors.numpy import load_file

    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    if meta.get("format") != "attune.copl.user-embeddings":
        raise ArtifactError(f"{path} is not a CoPL user-embeddings artifact")
    tensors = load_file(str(path / "embeddings.safetensors"))
    return EmbeddingsArtifact(
        user_ids=tuple(int(u) for u in meta["user_ids"]),
        users=tensors["users"].astype(np.float32),
        text_keys=tuple(meta["texts"]),
        responses=tensors["responses"].astype(np.float32),
        chosen_edges=tensors["chosen_edges"].astype(np.int64).reshape(-1, 2),
    )


_embeddings = NewestVersionCache(lambda version: load_embeddings(version_dir(version) / EMBEDDINGS))


def embeddings_of(version: CollabModelVersion) -> EmbeddingsArtifact:
    """The version's embeddings artifact, loaded once per process (the newest one is kept)."""
    return _embeddings.get(version)
