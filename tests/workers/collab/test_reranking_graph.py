"""The product scores candidates as the bench and the training run do: the reward plus the
graph's weighted score for texts in the graph; a model without a weight scores as before."""

from __future__ import annotations

import pytest
import torch

from apps.collab import selectors
from core.text import text_key
from tests.apps.collab.conftest import (  # noqa: F401 (fixtures)
    copl_settings,
    make_world,
    tiny_backbone,
    train_now,
)
from workers.collab import reranking
from workers.collab.graph_mix import GraphPrior
from workers.collab.uses import score_texts

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_personalized_scores_mix_the_graph_with_the_runs_weight(copl_settings):  # noqa: F811
    world = make_world()
    run = train_now()
    assert {"graph_weight", "calibration_pairs", "reward_heldout_accuracy"} <= set(run.metrics)
    model = reranking.reward_model(run)
    assert model.graph_weight == pytest.approx(run.metrics["graph_weight"], abs=1e-4)

    user = world.seen("format=bullets")[0]
    pair = world.pairs[0]  # both texts are response nodes of the graph
    candidates = [pair.chosen, pair.rejected, "a fresh text the graph never saw."]
    vector = torch.from_numpy(selectors.user_embedding(user)[0])
    reward = model.score(vector, candidates, [pair.prompt] * 3)
    artifact = selectors.embeddings_artifact(run)
    graph = GraphPrior.of(artifact.text_keys, artifact.responses).scores(
        vector, [text_key(c) for c in candidates]
    )
    assert graph[0] != 0 and graph[2] == 0

    saved = model.graph_weight
    try:
        model.graph_weight = 3.0
        scores = reranking.personalized_scores(user.pk, pair.prompt, candidates)
        assert scores == pytest.approx((reward + 3.0 * graph).tolist(), abs=1e-5)
        assert scores[2] == pytest.approx(float(reward[2]), abs=1e-5)  # off the graph: reward
        model.graph_weight = 0.0  # a version saved before the mix: the reward alone
        scores = reranking.personalized_scores(user.pk, pair.prompt, candidates)
        assert scores == pytest.approx(score_texts(model, vector, candidates, pair.prompt))
    finally:
        model.graph_weight = saved
