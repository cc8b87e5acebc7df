"""The personalized reward for best-of-n: score candidate responses for one user (the serving
process's default scorer).

The score is the one the training run measured (``workers.collab.graph_mix``): the reward, plus,
for a candidate whose text is a response node of the version's graph, the graph's own score
weighted by the reward model's ``graph_weight`` (a model saved without one scores by the reward
alone). The active version's reward model and its graph are loaded once per process (a new
version replaces them); scoring holds a lock because the mixture-of-LoRA layers keep the
routing of the call in progress. Torch is imported on first use, so importing this module
stays cheap.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from apps.accounts.models import User
from apps.collab import selectors
from apps.collab.models import CollabModelVersion
from core.caching import NewestVersionCache
from core.errors import ArtifactError
from core.text import text_key

log = logging.getLogger(__name__)
_score_lock = threading.Lock()


def _load_reward_model(version: CollabModelVersion) -> Any:
    from workers.collab.jobs import device
    from workers.collab.reward_artifacts import load_reward_model

    return load_reward_model(selectors.version_files(version).reward, device=device())


_reward_models = NewestVersionCache(_load_reward_model)


def reward_model(version: CollabModelVersion) -> Any:
    """The version's reward model, loaded on first use and kept while it is the newest asked."""
    return _reward_models.get(version)


def _load_graph(version: CollabModelVersion) -> Any:
    from workers.collab.graph_mix import GraphPrior

    artifact = selectors.embeddings_artifact(version)
    return GraphPrior.of(artifact.text_keys, artifact.responses)


_graphs = NewestVersionCache(_load_graph)


def graph_prior(version: CollabModelVersion) -> Any:
    """The version's graph scores (``GraphPrior``, keyed by text hash), loaded once per process."""
    return _graphs.get(version)


def personalized_scores(user_id: int, prompt: str, candidates: list[str]) -> list[float] | None:
    """The personalized score of each candidate for user ``user_id`` (higher is better), in
    the candidates' order; None when there is no active CoPL version (or its files are gone).

    The user's embedding is :func:`apps.collab.selectors.user_embedding` (trained, adapted or
    from the persona); a user with none (or unknown) is scored with the population's mean taste.
    """
    version = selectors.active_version()
    if version is None:
        return None
    if not candidates:
        return []
    user = User.objects.filter(pk=user_id).first()
    try:
        vector = selectors.user_embedding(user)[0] if user is not None else None
        if vector is None:
            vector = selectors.population_embedding(version)
        model = reward_model(version)
        graph = graph_prior(version) if getattr(model, "graph_weight", 0.0) else None
    except (ArtifactError, OSError) as err:
        log.error("CoPL %s cannot score: %s", version.label, err)
        return None
    import torch

    from workers.collab.uses import score_texts

    keys = [text_key(c) for c in candidates]
    with _score_lock:
        embedding = torch.as_tensor(vector, dtype=torch.float32)
        return score_texts(model, embedding, candidates, prompt, graph, keys)
