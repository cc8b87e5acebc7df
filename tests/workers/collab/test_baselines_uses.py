"""Baselines on toy features; best-of-n, similar users and starting eta helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workers.collab import baselines as bl
from workers.collab.reward import MoLEConfig, build_reward_model
from workers.collab.uses import (
    eta_from_neighbors,
    eta_keys,
    rerank,
    similar_users,
    starting_eta,
    tag_of,
)

FEATURES = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))


def toy(n_users: int, pairs_per_user: int, seed: int) -> bl.PairIndex:
    """Pairs over FEATURES: even users like dim 0, odd users dislike it; everybody likes dim 1."""
    g = torch.Generator().manual_seed(seed)
    features = FEATURES
    users, chosen, rejected = [], [], []
    for user in range(n_users):
        for _ in range(pairs_per_user):
            a, b = torch.randint(200, (2,), generator=g).tolist()
            score = features[:, 0] * (1 if user % 2 == 0 else -1) + 0.3 * features[:, 1]
            good, bad = (a, b) if score[a] > score[b] else (b, a)
            users.append(user)
            chosen.append(good)
            rejected.append(bad)
    return bl.PairIndex(torch.tensor(users), torch.tensor(chosen), torch.tensor(rejected))


def test_personal_baselines_beat_the_global_reward() -> None:
    features, train, test = FEATURES, toy(20, 12, seed=0), toy(20, 10, seed=1)
    global_acc = bl.accuracy(bl.global_margins(bl.fit_global(features, train), features, test))
    per_user = bl.fit_per_user(features, train, 20)
    per_user_acc = bl.accuracy(bl.per_user_margins(per_user, features, test))
    lore = bl.fit_lore(features, train, 20, rank=2)
    lore_acc = bl.accuracy(lore.margins(features, test))
    assert global_acc < 0.75 < per_user_acc and lore_acc > 0.85
    few = bl.PairIndex(train.users[:8] % 2, train.chosen[:8], train.rejected[:8])
    new = bl.fit_lore_users(lore.basis, features, few, 2)
    assert new.weights.shape == (2, 2)


def test_accuracy_counts_ties_half() -> None:
    assert bl.accuracy(torch.tensor([1.0, -1.0, 0.0, 2.0])) == pytest.approx(0.625)


def test_similar_users_by_cosine() -> None:
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.0]])
    found = similar_users(torch.tensor([1.0, 0.1]), embeddings, ["a", "b", "c", "d"], k=2)
    assert [u for u, _ in found] == ["a", "c"]
    assert (
        similar_users(torch.tensor([1.0, 0.1]), embeddings, "abcd", 1, exclude=["a"])[0][0] == "c"
    )


def test_eta_from_neighbors_is_the_weighted_mean() -> None:
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    etas = [{"emoji=yes": 1.0}, {"emoji=yes": -1.0, "tone=casual": 0.5}]
    near_first = eta_from_neighbors(torch.tensor([1.0, 0.0]), embeddings, etas, k=2)
    assert near_first["emoji=yes"] > 0.99 and abs(near_first["tone=casual"]) < 0.01
    assert eta_from_neighbors(torch.tensor([1.0, 1.0]), embeddings, etas, k=2)["emoji=yes"] == (
        pytest.approx(0.0, abs=1e-6)
    )


def test_rerank_and_starting_eta_with_a_tiny_model(tiny_backbone_dir: Path) -> None:
    torch.manual_seed(0)
    model = build_reward_model(MoLEConfig(backbone=str(tiny_backbone_dir), user_dim=4, n_experts=2))
    user = torch.tensor([1.0, 0.0, 0.0, 0.0])
    candidates = ["first text.", "second, longer text!", "third"]
    ranked = rerank(model, user, candidates)
    assert sorted(r.index for r in ranked) == [0, 1, 2]
    assert [r.reward for r in ranked] == sorted((r.reward for r in ranked), reverse=True)
    assert ranked[0].text == candidates[ranked[0].index]
    eta = starting_eta(model, user, contexts_per_source=1, eta_max=2.0)
    assert list(eta) == eta_keys() and "format=bullets" in eta and "format=prose" not in eta
    assert all(-2.0 <= v <= 2.0 for v in eta.values())
    assert eta == starting_eta(model, user, contexts_per_source=1, eta_max=2.0)
    assert tag_of("emoji=yes") == "<emoji=yes>"
