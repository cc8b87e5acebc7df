"""CoPL's cold start on the web side: a user outside the trained graph gets an embedding from
the stored artifact, without torch (the arithmetic is :mod:`core.coldstart`, shared with
``workers.collab.coldstart``). Only pairs whose two texts are response nodes of the graph count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from apps.collab.store import EmbeddingsArtifact
from core import coldstart
from core.coldstart import normalize, softmax

__all__ = ["Adapted", "adapt", "normalize", "softmax", "weighted_mean"]


@dataclass(frozen=True)
class Adapted:
    """An adapted embedding, the pairs it used and the heaviest neighbours (user id, weight)."""

    vector: np.ndarray
    pairs_used: int
    neighbors: tuple[tuple[int, float], ...]


def adapt(
    pairs: Sequence[tuple[str, str]],
    artifact: EmbeddingsArtifact,
    tau: float = 0.07,
    top: int = 10,
) -> Adapted | None:
    """The embedding of a user from their (chosen key, rejected key) pairs (keys from
    ``core.text.text_key``); None when no pair has both texts in the graph."""
    index = artifact.text_index
    usable = [(index[c], index[r]) for c, r in pairs if c in index and r in index]
    found = coldstart.adapt(usable, artifact.users, artifact.responses, artifact.chosen_edges, tau)
    if found is None:
        return None
    neighbors = tuple((artifact.user_ids[row], weight) for row, weight in found.heaviest(top))
    return Adapted(found.vector.astype(np.float32), len(usable), neighbors)


def weighted_mean(vectors: np.ndarray, similarities: np.ndarray, tau: float) -> np.ndarray:
    """``normalize(sum_j softmax(sim / tau)_j * v_j)``: the persona fallback's combination."""
    weights = softmax(similarities.astype(np.float64), tau)
    return normalize(weights @ vectors.astype(np.float64)).astype(np.float32)
