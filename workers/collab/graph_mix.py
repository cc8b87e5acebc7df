"""CoPL's scoring: the reward model's score plus the graph's own preference, mixed by evidence.

The MoLE reward model reads a text's features; the graph knows who chose which specific text. On
texts that are response nodes of the graph, the GNN's score of a text for a user, ``u . e_t``,
carries what the users near ``u`` chose, which no text feature may explain (a group's shared
taste for particular answers). The personalized score adds it::

    score_u(t) = reward_u(t) + w * u . (e_t - mean_e)     (t a response node of the graph)
    score_u(t) = reward_u(t)                              (any other text)

``mean_e`` is the mean response embedding, so a text the graph does not hold gets the user's
average graph score (0 after centring): the score of a text never depends on which other texts
are scored with it, and where no text is in the graph (fresh candidates) the order is the reward
model's alone. Both halves are Bradley-Terry logits, so the sum is a product of experts; ``w``
(>= 0) says how much the graph's logits are worth beside the reward's. It is fitted by
:func:`fit_graph_weight` on pairs the graph did not train on: a second GNN is trained on the
train pairs less a stable held-out share per user (:func:`calibration_split`), and ``w``
maximizes the Bradley-Terry likelihood of those held-out pairs under ``reward + w * graph``,
where the graph margins come from that second GNN (its user saw the rest of the data, as a
test user of the final graph does). Reward models saved before this mix carry no ``w`` and
score as before (``w = 0``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch

from workers.collab.gnn import GNNConfig, UserEmbeddings, train_gnn
from workers.collab.graph import build_graph

if TYPE_CHECKING:
    from workers.collab.reward import PersonalizedRewardModel
    from workers.collab.reward_training import FrozenEncoding

T = TypeVar("T")
CALIBRATION_SHARE = 0.1
"""Share of each user's train pairs held out of the calibration GNN (the pairs ``w`` fits on)."""
MAX_WEIGHT = 20.0


@dataclass(frozen=True)
class GraphPrior:
    """What the graph adds to a reward: the centred response embeddings, by text key (``w`` is
    the reward model's ``graph_weight``, saved with it)."""

    keys: dict[str, int]
    responses: torch.Tensor
    """[R, d] response embeddings minus their mean (row ``keys[key]``)."""

    @classmethod
    def of(cls, texts: Sequence[str], responses: torch.Tensor | np.ndarray) -> GraphPrior:
        """From the graph's response keys and embeddings [R, d] (``UserEmbeddings.texts``,
        ``.responses``; in the product the keys are ``core.text.text_key`` of the texts)."""
        responses = torch.as_tensor(responses).detach().float().cpu()
        centred = responses - responses.mean(0) if len(responses) else responses
        return cls({key: i for i, key in enumerate(texts)}, centred)

    def known(self, keys: Sequence[str]) -> torch.Tensor:
        """[N] bool: which keys are response nodes of the graph."""
        return torch.tensor([key in self.keys for key in keys], dtype=torch.bool)

    def scores(self, users: torch.Tensor, keys: Sequence[str]) -> torch.Tensor:
        """[N] graph scores ``u . (e_t - mean_e)`` of the keys' texts for one user embedding [d]
        or one per key [N, d]; 0 for a key the graph does not hold. Not weighted by ``w``."""
        if not keys:
            return torch.empty(0)
        users = users.detach().float().cpu().reshape(-1, users.shape[-1])
        users = users.expand(len(keys), -1) if len(users) == 1 else users
        rows = torch.tensor([self.keys.get(key, -1) for key in keys], dtype=torch.long)
        known = rows >= 0
        out = torch.zeros(len(keys))
        if known.any():
            out[known] = (users[known] * self.responses[rows[known]]).sum(-1)
        return out


def mixed_scores(
    model: PersonalizedRewardModel,
    users: torch.Tensor,
    texts: Sequence[str],
    prompts: Sequence[str] | None = None,
    graph: GraphPrior | None = None,
    keys: Sequence[str] | None = None,
    cache: FrozenEncoding | None = None,
) -> torch.Tensor:
    """CoPL's personalized scores [N] of ``texts`` for one user embedding [d] (or one per text):
    the reward model's, plus ``model.graph_weight`` times the graph scores (``keys``: the texts'
    keys in ``graph``, the texts themselves if None). Without a graph or a weight: the reward."""
    rewards = model.score(users, list(texts), prompts, cache=cache)
    weight = float(getattr(model, "graph_weight", 0.0))
    if graph is None or weight == 0.0 or not len(texts):
        return rewards
    return rewards + weight * graph.scores(users, list(keys if keys is not None else texts))


def fit_graph_weight(
    reward_margins: torch.Tensor,
    graph_margins: torch.Tensor,
    l2: float = 1e-3,
    steps: int = 100,
) -> float:
    """The ``w`` in [0, :data:`MAX_WEIGHT`] maximizing the mean Bradley-Terry log-likelihood of
    pairs under ``reward_margin + w * graph_margin`` (minus ``l2/2 w^2``); 0 without pairs.
    Both margins are chosen-minus-rejected, on pairs the graph did not train on."""
    if not len(graph_margins):
        return 0.0
    r, g = reward_margins.double(), graph_margins.double()
    w = torch.zeros((), dtype=torch.float64)
    for _ in range(steps):  # Newton's method on a convex 1-D problem, kept inside the bounds
        p = torch.sigmoid(-(r + w * g))
        grad = -(p * g).mean() + l2 * w
        hess = (p * (1 - p) * g * g).mean() + l2
        step = grad / hess
        w = (w - step).clamp(0.0, MAX_WEIGHT)
        if step.abs() < 1e-8:
            break
    return float(w)


@dataclass(frozen=True)
class Calibration:
    """The fitted ``w`` and what it was fitted on: held-out pairs with both texts in the
    calibration graph, and the accuracies there of the graph, the reward and their mix."""

    weight: float
    pairs: int
    graph_accuracy: float | None = None
    reward_accuracy: float | None = None
    mixed_accuracy: float | None = None


def calibrate_graph_weight(
    model: PersonalizedRewardModel,
    embeddings: UserEmbeddings,
    pairs: Sequence[tuple[str, str, str, str]],
    gnn_config: GNNConfig | None = None,
    key: Callable[[str], str] | None = None,
    cache: FrozenEncoding | None = None,
    device: torch.device | str = "cpu",
    max_pairs: int = 0,
) -> Calibration:
    """Fit ``w`` (see the module docstring) from the (user, prompt, chosen, rejected) ``pairs``
    the final graph ``embeddings`` trained on; ``key`` maps a text to its graph key (identity if
    None; ``core.text.text_key`` in the product). A calibration GNN (same config) trains on the
    pairs less :func:`calibration_split`'s held-out share; the reward margins come from
    ``model`` with the final user embeddings. ``max_pairs`` > 0 caps the pairs scored."""
    name = key or (lambda text: text)
    kept, held = calibration_split(pairs, user_of=lambda p: p[0])
    user_ids = list(dict.fromkeys(p[0] for p in pairs))
    graph = build_graph([(u, name(c), name(r)) for u, _, c, r in kept], user_ids=user_ids)
    if not held or not len(graph.pairs):
        return Calibration(0.0, 0)
    aux = train_gnn(graph, gnn_config, device=device)
    prior = GraphPrior.of(aux.texts, aux.responses)
    known = [p for p in held if name(p[2]) in prior.keys and name(p[3]) in prior.keys]
    known = known[:max_pairs] if max_pairs > 0 else known
    if not known:
        return Calibration(0.0, 0)
    aux_rows, rows = aux.user_index(), embeddings.user_index()
    aux_users = aux.users[[aux_rows[p[0]] for p in known]]
    chosen, rejected = [name(p[2]) for p in known], [name(p[3]) for p in known]
    graph_margins = prior.scores(aux_users, chosen) - prior.scores(aux_users, rejected)
    users = embeddings.users[[rows[p[0]] for p in known]]
    texts = [p[2] for p in known] + [p[3] for p in known]
    prompts = [p[1] for p in known] * 2
    rewards = model.score(torch.cat([users, users]), texts, prompts, cache=cache)
    reward_margins = bt_margins(rewards.float().cpu())
    weight = fit_graph_weight(reward_margins, graph_margins)
    return Calibration(
        weight,
        len(known),
        accuracy(graph_margins),
        accuracy(reward_margins),
        accuracy(reward_margins + weight * graph_margins),
    )


def accuracy(margins: torch.Tensor) -> float | None:
    """Share of positive margins (a tie counts half); None without margins."""
    if not len(margins):
        return None
    return float(((margins > 0).float() + 0.5 * (margins == 0).float()).mean())


def calibration_split(items: Sequence[T], user_of: Callable[[T], str]) -> tuple[list[T], list[T]]:
    """(kept, held out): a stable :data:`CALIBRATION_SHARE` of each user's items held out (by a
    hash of the user and the item's position among theirs), never a user's only item."""
    positions: dict[str, int] = {}
    kept: list[T] = []
    held: list[T] = []
    for item in items:
        user = user_of(item)
        n = positions[user] = positions.get(user, -1) + 1
        digest = hashlib.sha256(f"{user}|{n}".encode()).digest()
        bucket = int.from_bytes(digest[:4], "big") / 2**32
        (held if n > 0 and bucket < CALIBRATION_SHARE else kept).append(item)
    return kept, held


def bt_margins(scores: torch.Tensor) -> torch.Tensor:
    """Chosen-minus-rejected margins of scores laid out as [chosen..., rejected...]."""
    half = len(scores) // 2
    return scores[:half] - scores[half:]
