"""CoPL's personalized score: reward + w * the graph's own score, w fitted on pairs the graph did
not train on; old reward artifacts (no w) load and score by the reward alone."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from workers.collab.gnn import GNNConfig
from workers.collab.graph_mix import (
    CALIBRATION_SHARE,
    GraphPrior,
    calibrate_graph_weight,
    calibration_split,
    fit_graph_weight,
    mixed_scores,
)
from workers.collab.reward import MoLEConfig, build_reward_model
from workers.collab.reward_artifacts import load_reward_model, save_reward_model
from workers.collab.reward_training import RewardTrainConfig, fit_copl


class FixedReward:
    """A stand-in reward model: a fixed reward per text, whoever the user."""

    def __init__(self, rewards: dict[str, float], graph_weight: float) -> None:
        self.rewards, self.graph_weight = rewards, graph_weight

    def score(self, users: torch.Tensor, texts: Sequence[str], prompts=None, cache=None):
        return torch.tensor([self.rewards[t] for t in texts])


def prior() -> GraphPrior:
    # two response nodes; the user (1, 0) prefers "liked" by a graph margin of 4
    return GraphPrior.of(["liked", "disliked"], torch.tensor([[3.0, 1.0], [-1.0, 1.0]]))


def test_graph_scores_are_centred_and_zero_off_the_graph() -> None:
    user = torch.tensor([1.0, 0.0])
    scores = prior().scores(user, ["liked", "disliked", "fresh text"])
    assert scores.tolist() == pytest.approx([2.0, -2.0, 0.0])
    assert prior().known(["liked", "fresh text"]).tolist() == [True, False]


def test_the_mixed_score_follows_the_graph_when_the_graph_is_right() -> None:
    # the reward prefers the wrong text by 1; the graph knows better (margin 4)
    wrong = {"liked": 0.0, "disliked": 1.0, "fresh text": 0.5}
    user = torch.tensor([1.0, 0.0])
    texts = ["liked", "disliked", "fresh text"]
    mixed = mixed_scores(FixedReward(wrong, 1.0), user, texts, graph=prior())
    assert mixed[0] > mixed[1]
    # a text outside the graph keeps its reward, whatever it is scored with
    assert mixed[2] == pytest.approx(0.5)
    alone = mixed_scores(FixedReward(wrong, 1.0), user, ["fresh text"], graph=prior())
    assert alone.tolist() == pytest.approx([0.5])
    # no weight (a model saved before the mix), or no graph: the reward alone
    for model, graph in ((FixedReward(wrong, 0.0), prior()), (FixedReward(wrong, 1.0), None)):
        assert mixed_scores(model, user, texts, graph=graph).tolist() == [0.0, 1.0, 0.5]


def test_the_weight_follows_the_evidence() -> None:
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(400, generator=generator)
    right = 2.0 + torch.randn(400, generator=generator)  # margins that are mostly right
    assert fit_graph_weight(noise, right) > 1.0  # the graph is right, the reward guesses
    assert fit_graph_weight(right, noise) < 0.1  # the graph guesses, the reward is right
    assert fit_graph_weight(torch.empty(0), torch.empty(0)) == 0.0


def test_calibration_split_holds_out_a_stable_share_never_a_users_only_pair() -> None:
    items = [(f"u{u}", k) for u in range(200) for k in range(10)] + [("lonely", 0)]
    kept, held = calibration_split(items, user_of=lambda item: item[0])
    assert (kept, held) == calibration_split(items, user_of=lambda item: item[0])
    assert len(kept) + len(held) == len(items)
    assert abs(len(held) / len(items) - CALIBRATION_SHARE) < 0.03
    assert ("lonely", 0) in kept and all(k > 0 for _, k in held)


def tiny_config(folder: Path) -> MoLEConfig:
    return MoLEConfig(
        backbone=str(folder), user_dim=8, n_experts=2, rank=2, gate_hidden=8, layers=(1,)
    )


def test_old_artifacts_load_without_a_weight_and_score_as_before(
    tiny_backbone_dir: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = build_reward_model(tiny_config(tiny_backbone_dir))
    model.graph_weight = 0.7
    folder = save_reward_model(model, tmp_path / "v0001")
    assert load_reward_model(folder).graph_weight == pytest.approx(0.7)
    meta = json.loads((folder / "config.json").read_text())
    del meta["graph_weight"]  # what a version saved before the graph mix holds
    (folder / "config.json").write_text(json.dumps(meta))
    old = load_reward_model(folder)
    user, texts = torch.randn(8), ["calm text.", "hey text!"]
    graph = GraphPrior.of(texts, torch.randn(2, 8))
    assert old.graph_weight == 0.0
    assert torch.equal(mixed_scores(old, user, texts, graph=graph), old.score(user, texts))


def test_fit_copl_calibrates_the_graph_weight_on_a_shared_taste(tiny_backbone_dir: Path) -> None:
    # two groups with opposite tastes over specific texts no text feature explains
    torch.manual_seed(0)
    pairs = []
    for u in range(12):
        for k in range(10):
            a, b = f"text {k} one.", f"text {k} two."
            liked_first = (k % 3 == 0) == (u % 2 == 0)
            pairs.append((f"u{u}", "", *((a, b) if liked_first else (b, a))))
    fit = fit_copl(
        pairs,
        GNNConfig(dim=8, layers=2, epochs=60),
        tiny_config(tiny_backbone_dir),
        RewardTrainConfig(epochs=1, batch_size=16),
    )
    calibration = fit.calibration
    assert calibration is not None and calibration.pairs > 0
    assert fit.reward_model.graph_weight == calibration.weight > 0.0
    assert calibration.mixed_accuracy >= calibration.reward_accuracy
    # the same fit by hand gives the same weight
    again = calibrate_graph_weight(
        fit.reward_model, fit.embeddings, pairs, GNNConfig(dim=8, layers=2, epochs=60)
    )
    assert again.weight == pytest.approx(calibration.weight)
