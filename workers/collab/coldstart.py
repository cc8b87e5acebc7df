"""Embeddings for users the GNN never saw, without a gradient step.

*From a few ratings* (CoPL's optimization-free adaptation): the candidates are the seen users who
chose one of the responses the new user chose; each candidate is scored by the mean log-likelihood
of the new user's pairs under the candidate's embedding, ``mean_p log sigmoid(u . (c_p - r_p))``,
and the new embedding is the average of the candidates' embeddings with ``softmax(score / tau)``
weights (tau = 0.07). Only pairs whose two texts are response nodes of the graph can be scored.
When no seen user shares a chosen response, every seen user is a candidate.

*From nothing but a persona*: the seen users whose persona embeddings are nearest (cosine) to the
new persona, averaged with ``softmax(cosine / tau)`` weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from core import coldstart
from workers.collab.gnn import UserEmbeddings

ColdStartMethod = Literal["shared-response", "all-users", "persona"]


@dataclass(frozen=True)
class ColdStart:
    """A cold-start embedding (L2-normalized) and where it came from, neighbours by weight."""

    embedding: torch.Tensor
    neighbors: tuple[str, ...]
    weights: tuple[float, ...]
    pairs_used: int
    method: ColdStartMethod


def _ranked(ids: Sequence[str], weights: torch.Tensor, top: int) -> tuple[tuple, tuple]:
    order = torch.argsort(weights, descending=True)[:top].tolist()
    return tuple(ids[i] for i in order), tuple(float(weights[i]) for i in order)


def adapt_user(
    pairs: Sequence[tuple[str, str]],
    embeddings: UserEmbeddings,
    tau: float = 0.07,
    top: int = 20,
) -> ColdStart | None:
    """The embedding of a new user from their (chosen text, rejected text) pairs.

    Returns ``None`` when no pair has both texts in the graph (nothing to score: fall back to
    :func:`persona_fallback`). ``neighbors``/``weights`` list the ``top`` heaviest candidates.
    """
    index = embeddings.text_index()
    usable = [(index[c], index[r]) for c, r in pairs if c in index and r in index]
    found = coldstart.adapt(
        usable,
        embeddings.users.detach().cpu().numpy(),
        embeddings.responses.detach().cpu().numpy(),
        embeddings.chosen_edges.cpu().numpy(),
        tau,
    )
    if found is None:
        return None
    ranked = found.heaviest(top)
    return ColdStart(
        torch.as_tensor(found.vector, dtype=embeddings.users.dtype),
        tuple(embeddings.user_ids[row] for row, _ in ranked),
        tuple(weight for _, weight in ranked),
        len(usable),
        found.method,  # type: ignore[arg-type]
    )


def persona_fallback(
    persona: torch.Tensor,
    persona_embeddings: torch.Tensor,
    user_embeddings: torch.Tensor,
    user_ids: Sequence[str] | None = None,
    k: int = 10,
    tau: float = 0.07,
) -> ColdStart:
    """The embedding of a user with no ratings, from the ``k`` seen users with the nearest
    personas: ``sum_j softmax(cos(persona, persona_j) / tau) * user_j`` over those k.

    ``persona_embeddings`` [N, p] and ``user_embeddings`` [N, d] are row-aligned (seen user j).
    """
    if persona_embeddings.shape[0] != user_embeddings.shape[0] or not len(user_embeddings):
        raise ValueError("persona and user embeddings must be non-empty and row-aligned")
    similarity = F.normalize(persona_embeddings.float(), dim=1) @ F.normalize(
        persona.float(), dim=0
    )
    top = torch.topk(similarity, min(k, len(similarity))).indices
    weights = torch.softmax(similarity[top] / tau, dim=0)
    embedding = F.normalize(weights @ user_embeddings[top].float(), dim=0)
    ids = list(user_ids) if user_ids is not None else [str(i) for i in range(len(similarity))]
    chosen_ids = [ids[i] for i in top.tolist()]
    neighbors, ranked = _ranked(chosen_ids, weights, k)
    return ColdStart(embedding, neighbors, ranked, 0, "persona")
