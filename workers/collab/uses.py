"""What the rest of Attune does with CoPL: best-of-n reranking, similar users, starting eta.

* :func:`rerank` scores n candidate responses with the personalized reward of one user embedding
  and returns them best first (generation's best-of-n); with the graph given, a candidate that is
  a response node of the graph also gets the graph's own score, weighted as the reward model says
  (``workers.collab.graph_mix``).
* :func:`similar_users` is cosine nearest neighbours among stored user embeddings (the console).
* :func:`starting_eta` reads a new user's style preferences off the reward model: for each style
  attribute value (``format=bullets``, ``emoji=yes``, ...) it renders world contexts in the neutral
  style and with only that attribute flipped, and turns the reward model's preference between the
  two, ``P = mean sigmoid(r(flipped) - r(neutral))``, into ``eta = eta_max * (2P - 1)``: +eta_max
  when the user always prefers the flip, 0 when indifferent, negative when they prefer the neutral
  value. :func:`eta_from_neighbors` is the alternative once seen users have fitted etas: the
  softmax(cosine / tau)-weighted mean eta of the k nearest seen users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from core.world.renderer import TASKS, render
from core.world.sources import SOURCE_NAMES, make_context
from core.world.styles import ATTRIBUTES, default_style, tag_token
from workers.collab.reward import PersonalizedRewardModel

if TYPE_CHECKING:
    from workers.collab.graph_mix import GraphPrior
    from workers.collab.reward_training import FrozenEncoding


@dataclass(frozen=True)
class Ranked:
    """One candidate of a best-of-n: its position in the input, text and reward."""

    index: int
    text: str
    reward: float


def score_texts(
    model: PersonalizedRewardModel,
    user_embedding: torch.Tensor,
    texts: Sequence[str],
    prompt: str | None = None,
    graph: GraphPrior | None = None,
    keys: Sequence[str] | None = None,
) -> list[float]:
    """The personalized score of each text for one user embedding [d]: the reward, plus the
    graph's weighted score when ``graph`` is given (``keys``: the texts' keys in it)."""
    from workers.collab.graph_mix import mixed_scores

    prompts = [prompt] * len(texts) if prompt is not None else None
    return mixed_scores(model, user_embedding, list(texts), prompts, graph, keys).tolist()


def rerank(
    model: PersonalizedRewardModel,
    user_embedding: torch.Tensor,
    candidates: Sequence[str],
    prompt: str | None = None,
    graph: GraphPrior | None = None,
    keys: Sequence[str] | None = None,
) -> list[Ranked]:
    """The candidates sorted by personalized score, best first (ties keep input order)."""
    rewards = score_texts(model, user_embedding, candidates, prompt, graph, keys)
    order = sorted(range(len(candidates)), key=lambda i: -rewards[i])
    return [Ranked(i, candidates[i], rewards[i]) for i in order]


def similar_users(
    user_embedding: torch.Tensor,
    embeddings: torch.Tensor,
    user_ids: Sequence[str],
    k: int = 10,
    exclude: Sequence[str] = (),
) -> list[tuple[str, float]]:
    """The ``k`` users whose embeddings have the highest cosine with ``user_embedding``."""
    similarity = F.normalize(embeddings.float(), dim=1) @ F.normalize(user_embedding.float(), dim=0)
    skip = set(exclude)
    ranked = torch.argsort(similarity, descending=True).tolist()
    found = [(user_ids[i], float(similarity[i])) for i in ranked if user_ids[i] not in skip]
    return found[:k]


def eta_keys() -> list[str]:
    """The preference keys eta is given for: every non-default attribute value, ``name=value``."""
    return [f"{a.name}={v}" for a in ATTRIBUTES for v in a.values if v != a.default]


def eta_probes(
    contexts_per_source: int = 2, tasks: Sequence[str] = TASKS
) -> tuple[list[str], list[str]]:
    """(eta keys, probe texts) of :func:`starting_eta`: every fixed probe context rendered in the
    neutral style, then once per key with only that attribute flipped (key-major order)."""
    neutral = default_style()
    probes = [
        (make_context(source, 10**8 + i), task)
        for source in SOURCE_NAMES
        for i in range(contexts_per_source)
        for task in tasks
    ]
    texts: list[str] = [render(context, task, neutral) for context, task in probes]
    keys = eta_keys()
    for key in keys:
        name, value = key.split("=")
        texts += [render(c, t, {**neutral, name: value}) for c, t in probes]
    return keys, texts


def starting_eta(
    model: PersonalizedRewardModel,
    user_embedding: torch.Tensor,
    contexts_per_source: int = 2,
    eta_max: float = 1.0,
    tasks: Sequence[str] = TASKS,
    cache: FrozenEncoding | None = None,
) -> dict[str, float]:
    """Starting eta per ``name=value`` from the reward model's preference for attribute-flipped
    renderings of fixed probe contexts (deterministic; see the module docstring). ``cache``
    (``encode_frozen`` over :func:`eta_probes` texts) skips the frozen layers."""
    keys, texts = eta_probes(contexts_per_source, tasks)
    rewards = model.score(user_embedding, texts, cache=cache).view(len(keys) + 1, -1)
    preference = torch.sigmoid(rewards[1:] - rewards[0]).mean(dim=1)
    return {key: float(eta_max * (2 * p - 1)) for key, p in zip(keys, preference, strict=True)}


def eta_from_neighbors(
    user_embedding: torch.Tensor,
    embeddings: torch.Tensor,
    etas: Sequence[Mapping[str, float]],
    k: int = 10,
    tau: float = 0.07,
) -> dict[str, float]:
    """The softmax(cosine / tau)-weighted mean of the etas of the ``k`` nearest seen users
    (``etas[i]`` belongs to ``embeddings[i]``; a key a neighbour lacks counts as 0)."""
    if len(etas) != len(embeddings) or not len(etas):
        raise ValueError("etas and embeddings must be non-empty and row-aligned")
    similarity = F.normalize(embeddings.float(), dim=1) @ F.normalize(user_embedding.float(), dim=0)
    top = torch.topk(similarity, min(k, len(similarity))).indices
    weights = torch.softmax(similarity[top] / tau, dim=0).tolist()
    keys = sorted({key for i in top.tolist() for key in etas[i]})
    return {
        key: sum(w * etas[i].get(key, 0.0) for w, i in zip(weights, top.tolist(), strict=True))
        for key in keys
    }


def tag_of(key: str) -> str:
    """The style tag token of an eta key: ``format=bullets`` -> ``<format=bullets>``."""
    name, value = key.split("=")
    return tag_token(name, value)
