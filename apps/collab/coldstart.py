"""CoPL's optimization-free adaptation for users outside the trained graph, in numpy (the web
side stays torch-free).

The same computation as ``workers.collab.coldstart.adapt_user`` (a test checks they agree): the
candidates are the seen users who chose one of the responses the new user chose (every seen user
when none did); each is scored by the mean log-likelihood of the new user's pairs under its
embedding, ``mean_p log sigmoid(u . (c_p - r_p))``; the new embedding is the L2-normalized
average of the candidates' embeddings with ``softmax(score / tau)`` weights. Only pairs whose two
texts are response nodes of the graph count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from apps.collab.store import EmbeddingsArtifact


@dataclass(frozen=True)
class Adapted:
    """An adapted embedding, the pairs it used and the heaviest neighbours (user id, weight)."""

    vector: np.ndarray
    pairs_used: int
    neighbors: tuple[tuple[int, float], ...]


def softmax(scores: np.ndarray, tau: float) -> np.ndarray:
    z = scores / tau
    z = z - z.max()
    weights = np.exp(z)
    return weights / weights.sum()


def normalize(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / max(norm, 1e-12)


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def adapt(
    pairs: Sequence[tuple[str, str]],
    artifact: EmbeddingsArtifact,
    tau: float = 0.07,
    top: int = 10,
) -> Adapted | None:
    """The embedding of a user from their (chosen key, rejected key) pairs (keys from
    ``apps.collab.pairs.text_key``); None when no pair has both texts in the graph."""
    index = artifact.text_index
    usable = [(index[c], index[r]) for c, r in pairs if c in index and r in index]
    if not usable:
        return None
    chosen = np.array([c for c, _ in usable])
    rejected = np.array([r for _, r in usable])
    edges = artifact.chosen_edges
    candidates = np.unique(edges[np.isin(edges[:, 1], chosen), 0])
    if not len(candidates):
        candidates = np.arange(len(artifact.user_ids))
    vectors = artifact.users[candidates].astype(np.float64)
    margins = vectors @ (artifact.responses[chosen] - artifact.responses[rejected]).T
    weights = softmax(log_sigmoid(margins).mean(axis=1), tau)
    vector = normalize(weights @ vectors).astype(np.float32)
    order = np.argsort(-weights, kind="stable")[:top]
    neighbors = tuple((artifact.user_ids[candidates[i]], float(weights[i])) for i in order)
    return Adapted(vector, len(usable), neighbors)


def weighted_mean(vectors: np.ndarray, similarities: np.ndarray, tau: float) -> np.ndarray:
    """``normalize(sum_j softmax(sim / tau)_j * v_j)``: the persona fallback's combination."""
    weights = softmax(similarities.astype(np.float64), tau)
    return normalize(weights @ vectors.astype(np.float64)).astype(np.float32)
