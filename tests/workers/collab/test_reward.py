"""The MoLE reward model on a tiny random BERT: top-1 routing, shared LoRA, prefix cache,
training, and the safetensors artifact; one test loads the bundled MiniLM offline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workers.collab.gnn import GNNConfig
from workers.collab.reward import (
    MINILM,
    MoLEConfig,
    MoLELinear,
    build_reward_model,
    resolve_backbone,
)
from workers.collab.reward_artifacts import (
    latest_version_dir,
    load_reward_model,
    next_version_dir,
    save_reward_model,
)
from workers.collab.reward_training import (
    RewardExample,
    RewardTrainConfig,
    encode_frozen,
    fit_copl,
    train_reward_model,
    warm_start_gate,
)

TEXTS = ["short and calm.", "a much longer text, with more words in it!", "hey there!", "dear all"]


def config(folder: Path, **overrides: object) -> MoLEConfig:
    base = {"backbone": str(folder), "user_dim": 4, "n_experts": 3, "rank": 2, "gate_hidden": 8}
    return MoLEConfig(**{**base, **overrides})


def users(n: int = 6) -> torch.Tensor:
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(1))


def test_every_linear_layer_gets_shared_and_expert_loras(tiny_backbone_dir: Path) -> None:
    model = build_reward_model(config(tiny_backbone_dir))
    assert len(model.adapted) == 2 * 6  # q, k, v, attention out, intermediate, output per layer
    layer = model.adapted[0]
    d_in, d_out = layer.base.in_features, layer.base.out_features
    assert layer.shared_a.shape == (2, d_in) and layer.shared_b.shape == (d_out, 2)
    assert layer.expert_a.shape == (3, 2, d_in) and layer.expert_b.shape == (3, d_out, 2)
    assert not any(
        p.requires_grad for p in model.backbone.parameters() if p.ndim and p is layer.base.weight
    )
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(
        ".shared_" in n or ".expert_" in n or n.startswith(("gate.", "head.")) for n in trainable
    )


def test_target_modules_and_layers_select_linear_layers(tiny_backbone_dir: Path) -> None:
    model = build_reward_model(
        config(tiny_backbone_dir, layers=(1,), target_modules=("query", "output.dense"))
    )
    layer = model.layer_list[0][1]
    names = {n for n, m in layer.named_modules() if isinstance(m, MoLELinear)}
    assert names == {"attention.self.query", "output.dense"}
    assert model.first_layer == 1
    with pytest.raises(ValueError, match="no linear layer"):
        build_reward_model(config(tiny_backbone_dir, target_modules=("nothing",)))


@pytest.mark.parametrize("gate_weight", ["straight", "prob"])
def test_top1_routing_only_the_chosen_expert_changes_a_reward(
    tiny_backbone_dir: Path, gate_weight: str
) -> None:
    torch.manual_seed(0)
    model = build_reward_model(
        config(tiny_backbone_dir, gate_noise=0.0, gate_weight=gate_weight)
    ).eval()
    batch = users(12)
    routing = model.route(batch)
    assert torch.equal(routing.expert, routing.probs.argmax(-1))
    top = routing.probs.max(-1).values
    if gate_weight == "prob":
        assert torch.allclose(routing.weight, top)
    else:  # value 1, gradient of the top probability
        assert torch.allclose(routing.weight, torch.ones(len(batch)))
        (grad,) = torch.autograd.grad(
            routing.weight.sum(), model.gate.net[-1].bias, retain_graph=True
        )
        (expected,) = torch.autograd.grad(top.sum(), model.gate.net[-1].bias)
        assert torch.allclose(grad, expected)
    texts = [TEXTS[0]] * len(batch)
    before = model.score(batch, texts)
    target = int(routing.expert[0])
    with torch.no_grad():
        for layer in model.adapted:
            layer.expert_b[target].normal_()
    after = model.score(batch, texts)
    changed = ~torch.isclose(before, after)
    assert torch.equal(changed, routing.expert == target)
    with torch.no_grad():
        for layer in model.adapted:
            layer.shared_b.normal_()
    assert not torch.isclose(model.score(batch, texts), after).any()


def test_prefix_cache_gives_the_same_rewards(tiny_backbone_dir: Path) -> None:
    torch.manual_seed(0)
    model = build_reward_model(config(tiny_backbone_dir, layers=(1,))).eval()
    with torch.no_grad():
        for layer in model.adapted:
            layer.shared_b.normal_()
            layer.expert_b.normal_()
    cache = encode_frozen(model, [("", t) for t in TEXTS])
    assert cache.prefix is not None and cache.features.shape == (len(TEXTS), 16)
    batch = users(len(TEXTS))
    plain = model.score(batch, TEXTS)
    cached = model.score(batch, TEXTS, cache=cache)
    assert torch.allclose(plain, cached, atol=1e-5)
    assert all(layer.enabled for layer in model.adapted)


def test_training_learns_opposite_preferences(tiny_backbone_dir: Path) -> None:
    torch.manual_seed(0)
    model = build_reward_model(
        config(tiny_backbone_dir, layers=(1,), gate_weight="straight", n_experts=2)
    )
    embeddings = torch.tensor([[1.0, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 0, 1.0, 0], [0, 0, 0.9, 0.1]])
    labels = warm_start_gate(model, embeddings)
    assert labels[0] == labels[1] and labels[2] == labels[3] and labels[0] != labels[2]
    a, b = "calm and formal text.", "hey, casual text!"
    examples = [RewardExample(u, a, b) if u < 2 else RewardExample(u, b, a) for u in range(4)] * 4
    cache = encode_frozen(model, [("", a), ("", b)])
    history = train_reward_model(
        model, examples, embeddings, RewardTrainConfig(epochs=15, batch_size=8, lr=1e-2), cache
    )
    assert history[-1] < history[0]
    rewards = model.score(embeddings.repeat_interleave(2, 0), [a, b] * 4).view(4, 2)
    assert (rewards[:2, 0] > rewards[:2, 1]).all() and (rewards[2:, 1] > rewards[2:, 0]).all()


def test_save_load_round_trip_with_versions(tiny_backbone_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_reward_model(config(tiny_backbone_dir, layers=(1,)))
    with torch.no_grad():
        for layer in model.adapted:
            layer.shared_b.normal_()
            layer.expert_b.normal_()
    assert next_version_dir(tmp_path) == tmp_path / "v0001"
    folder = save_reward_model(model, next_version_dir(tmp_path), {"seen": 0.9}, "abc")
    assert next_version_dir(tmp_path) == tmp_path / "v0002"
    assert latest_version_dir(tmp_path) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["adapter.safetensors", "config.json"]
    loaded = load_reward_model(folder)
    assert loaded.config == model.config
    batch = users(len(TEXTS))
    assert torch.allclose(loaded.score(batch, TEXTS), model.eval().score(batch, TEXTS), atol=1e-6)
    (folder / "config.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a"):
        load_reward_model(folder)


def test_bundled_minilm_loads_offline() -> None:
    assert Path(resolve_backbone(MINILM), "model.safetensors").exists()
    model = build_reward_model(MoLEConfig(user_dim=4, layers=(5,), max_length=32))
    assert model.backbone.config.hidden_size == 384 and len(model.adapted) == 6
    rewards = model.score(users(1)[0], ["Hello there!", "Dear colleagues,"])
    assert rewards.shape == (2,) and torch.isfinite(rewards).all()


def test_fit_copl_trains_both_halves(tiny_backbone_dir: Path) -> None:
    torch.manual_seed(0)
    pairs = [
        (f"u{u}", "prompt", *((f"calm text {k}.", f"hey text {k}!")[:: 1 if u % 2 else -1]))
        for u in range(6)
        for k in range(4)
    ]
    fit = fit_copl(
        pairs,
        GNNConfig(dim=8, layers=2, epochs=20),
        config(tiny_backbone_dir, layers=(1,)),
        RewardTrainConfig(epochs=1, batch_size=8),
    )
    assert fit.embeddings.users.shape == (6, 8) and len(fit.embeddings.texts) == 8
    assert fit.reward_model.config.user_dim == 8 and len(fit.losses) == 3
    rewards = fit.reward_model.score(fit.embeddings.users[0], ["calm text 0.", "hey text 0!"])
    assert torch.isfinite(rewards).all()
