"""CoPL's optimization-free adaptation, in NumPy: the one implementation of the arithmetic, used
by the web side (``apps.collab.coldstart``, on a stored artifact) and the torch side
(``workers.collab.coldstart``, on freshly trained embeddings).

The candidates are the seen users who chose one of the responses the new user chose (every seen
user when none did); each is scored by the mean log-likelihood of the new user's pairs under its
embedding, ``mean_p log sigmoid(u . (c_p - r_p))``; the new embedding is the L2-normalized
average of the candidates' embeddings with ``softmax(score / tau)`` weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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


@dataclass(frozen=True)
class Adaptation:
    """The new embedding (float64, L2-normalized), the candidate rows with their weights, and
    whether the candidates share a chosen response (``shared-response``) or are everyone."""

    vector: np.ndarray
    candidates: np.ndarray
    weights: np.ndarray
    method: str

    def heaviest(self, top: int) -> list[tuple[int, float]]:
        """(candidate row, weight) of the ``top`` heaviest candidates, heaviest first."""
        order = np.argsort(-self.weights, kind="stable")[:top]
        return [(int(self.candidates[i]), float(self.weights[i])) for i in order]


def adapt(
    pairs: Sequence[tuple[int, int]],
    users: np.ndarray,
    responses: np.ndarray,
    chosen_edges: np.ndarray,
    tau: float = 0.07,
) -> Adaptation | None:
    """Adapt from (chosen response row, rejected response row) pairs; None without pairs.

    ``users`` [U, d] and ``responses`` [R, d] are the trained embeddings, ``chosen_edges`` [E, 2]
    the graph's (user row, chosen response row) edges.
    """
    if not pairs:
        return None
    chosen = np.array([c for c, _ in pairs])
    rejected = np.array([r for _, r in pairs])
    candidates = np.unique(chosen_edges[np.isin(chosen_edges[:, 1], chosen), 0])
    method = "shared-response"
    if not len(candidates):
        candidates, method = np.arange(len(users)), "all-users"
    vectors = users[candidates].astype(np.float64)
    margins = vectors @ (responses[chosen] - responses[rejected]).astype(np.float64).T
    weights = softmax(log_sigmoid(margins).mean(axis=1), tau)
    return Adaptation(normalize(weights @ vectors), candidates, weights, method)
