"""Training the CoPL reward model on CPU or GPU: frozen encodings, k-means gate warm start,
and the Bradley-Terry training loop.

:func:`encode_frozen` runs the frozen backbone once per text and keeps (a) the hidden states that
enter the first adapted layer, so training and scoring skip the frozen layers below it, and (b)
the pooled, L2-normalized feature of the frozen backbone, the input of the baselines.
:func:`train_reward_model` fits the LoRAs, gate and head on (user row, chosen, rejected) examples
with the user embeddings frozen; it is what a ``gpu`` queue task calls.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from workers.collab.gnn import GNNConfig, UserEmbeddings, train_gnn
from workers.collab.graph import build_graph
from workers.collab.graph_mix import Calibration, calibrate_graph_weight
from workers.collab.reward import (
    MoLEConfig,
    PersonalizedRewardModel,
    Routing,
    build_reward_model,
    pool,
)


# -- frozen encodings (prefix cache and baseline features) ---------------------------------------
@dataclass
class FrozenEncoding:
    """Per text: token ids, the hidden states entering the first adapted layer, and the frozen
    backbone's pooled, L2-normalized feature (the baselines' input)."""

    keys: list[tuple[str, str]]
    input_ids: list[torch.Tensor]
    prefix: list[torch.Tensor] | None
    features: torch.Tensor
    index: dict[tuple[str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {key: i for i, key in enumerate(self.keys)}

    def batch(self, keys: Sequence[tuple[str, str]], device: torch.device) -> tuple[dict, ...]:
        """Padded (inputs, prefix or None) for cached ``keys`` (``KeyError`` if one is missing)."""
        rows = [self.index[key] for key in keys]
        ids = [self.input_ids[i] for i in rows]
        length = max(len(x) for x in ids)
        input_ids = torch.zeros(len(ids), length, dtype=torch.long)
        mask = torch.zeros(len(ids), length, dtype=torch.long)
        for i, x in enumerate(ids):
            input_ids[i, : len(x)], mask[i, : len(x)] = x, 1
        inputs = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
        if self.prefix is None:
            return inputs, None
        hidden = torch.zeros(len(ids), length, self.prefix[0].shape[-1])
        for i, row in enumerate(rows):
            hidden[i, : len(ids[i])] = self.prefix[row]
        return inputs, hidden.to(device)


@torch.no_grad()
def encode_frozen(
    model: PersonalizedRewardModel,
    keys: Sequence[tuple[str, str]],
    batch_size: int = 64,
    keep_prefix: bool = True,
    progress: bool = False,
    prefix_dtype: torch.dtype = torch.float32,
    on_batch: Callable[[int, int], None] | None = None,
) -> FrozenEncoding:
    """Run the frozen backbone (LoRAs off) once over unique (prompt, text) ``keys``; the cached
    hidden states are kept as ``prefix_dtype`` (float16 halves a large run's cache) and
    ``on_batch(done, total)`` follows the texts encoded (a job's progress report)."""
    keys = list(dict.fromkeys(model.key(p, t) for p, t in keys))
    layers = model.layer_list[0]
    keep_prefix = keep_prefix and model.first_layer > 0
    captured: list[torch.Tensor] = []

    def capture(module: nn.Module, args: tuple, kwargs: dict) -> None:
        hidden = args[0] if args else kwargs["hidden_states"]
        captured.append(hidden.detach().to("cpu", prefix_dtype))

    handle = layers[model.first_layer].register_forward_pre_hook(capture, with_kwargs=True)
    model.set_adapters(False)
    ids: list[torch.Tensor] = []
    prefix: list[torch.Tensor] = []
    features: list[torch.Tensor] = []
    starts = range(0, len(keys), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="copl encode", unit="batch")
    try:
        model.eval()
        for start in starts:
            chunk = keys[start : start + batch_size]
            inputs = model.tokenize([t for _, t in chunk], [p for p, _ in chunk])
            captured.clear()
            hidden = model.backbone(**inputs).last_hidden_state
            pooled = pool(hidden, inputs["attention_mask"], model.config.pooling)
            features.append(F.normalize(pooled.float(), dim=-1).cpu())
            lengths = inputs["attention_mask"].sum(1).tolist()
            for i, n in enumerate(lengths):
                ids.append(inputs["input_ids"][i, :n].cpu())
                if keep_prefix:
                    prefix.append(captured[0][i, :n].clone())
            if on_batch is not None:
                on_batch(min(start + batch_size, len(keys)), len(keys))
    finally:
        handle.remove()
        model.set_adapters(True)
    return FrozenEncoding(keys, ids, prefix if keep_prefix else None, torch.cat(features))


# -- training -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RewardExample:
    """One training comparison: a row of the user-embedding matrix and two texts."""

    user: int
    chosen: str
    rejected: str
    prompt: str = ""


@dataclass(frozen=True)
class RewardTrainConfig:
    """AdamW on the LoRAs, gate and head; cosine schedule with 3% warm-up; BT + balance loss.

    ``gate_init="kmeans"`` first fits the gate to a k-means partition of the training users'
    embeddings (:func:`warm_start_gate`); ``"random"`` leaves the gate as initialized.
    """

    epochs: int = 2
    batch_size: int = 32
    lr: float = 5e-3
    weight_decay: float = 0.0
    balance: float = 0.01
    gate_init: str = "kmeans"
    seed: int = 0


def balance_loss(routing: Routing) -> torch.Tensor:
    """Switch-Transformer load balancing: ``E * sum_i f_i * P_i`` (1.0 when perfectly even)."""
    n = routing.probs.shape[-1]
    share = torch.bincount(routing.expert, minlength=n).float() / len(routing.expert)
    return n * (share * routing.probs.mean(0)).sum()


def train_reward_model(
    model: PersonalizedRewardModel,
    examples: Sequence[RewardExample],
    users: torch.Tensor,
    config: RewardTrainConfig | None = None,
    cache: FrozenEncoding | None = None,
    progress: bool = False,
    on_step: Callable[[int, int, float], None] | None = None,
) -> list[float]:
    """Fit the MoLE LoRAs, gate and head on ``examples`` (user rows index ``users``, which stay
    frozen); returns the loss of every step. ``cache`` (from :func:`encode_frozen`) skips the
    frozen layers; texts missing from it are tokenized and run in full. ``on_step(step, total,
    loss)`` is called after every optimizer step (a job's progress report)."""
    config = config or RewardTrainConfig()
    if not examples:
        raise ValueError("no training examples")
    if config.gate_init not in ("kmeans", "random"):
        raise ValueError(f"unknown gate_init {config.gate_init!r}; choose kmeans or random")
    torch.manual_seed(config.seed)
    if config.gate_init == "kmeans":
        rows = torch.tensor(sorted({e.user for e in examples}))
        warm_start_gate(model, users[rows], seed=config.seed)
    order = list(range(len(examples)))
    steps_per_epoch = math.ceil(len(order) / config.batch_size)
    total = steps_per_epoch * config.epochs
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(1, int(0.03 * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * s / total)),
    )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="copl reward", unit="step")
    history: list[float] = []
    model.train()
    rng = random.Random(config.seed)
    for _ in range(config.epochs):
        rng.shuffle(order)
        for start in range(0, len(order), config.batch_size):
            batch = [examples[i] for i in order[start : start + config.batch_size]]
            keys = [model.key(e.prompt, e.chosen) for e in batch]
            keys += [model.key(e.prompt, e.rejected) for e in batch]
            rows = torch.tensor([e.user for e in batch])
            both = users[torch.cat([rows, rows])]
            if cache is not None and all(k in cache.index for k in keys):
                inputs, prefix = cache.batch(keys, model.device)
            else:
                inputs, prefix = model.tokenize([t for _, t in keys], [p for p, _ in keys]), None
            rewards = model(inputs, both, prefix)
            chosen, rejected = rewards.split(len(batch))
            loss = F.softplus(rejected - chosen).mean()
            total_loss = loss + config.balance * balance_loss(model.last_routing)
            optimizer.zero_grad()
            total_loss.backward()
            optimizer.step()
            schedule.step()
            history.append(loss.item())
            if on_step is not None:
                on_step(len(history), total, history[-1])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    if bar is not None:
        bar.close()
    model.eval()
    return history


def kmeans(points: torch.Tensor, k: int, iters: int = 50, seed: int = 0) -> torch.Tensor:
    """Cluster labels of cosine k-means (k-means++ seeding) on the rows of ``points``."""
    x = F.normalize(points.float(), dim=1)
    generator = torch.Generator().manual_seed(seed)
    k = min(k, len(x))
    centres = x[torch.randint(len(x), (1,), generator=generator)]
    while len(centres) < k:
        distance = (1 - x @ centres.T).min(dim=1).values.clamp_min(0)
        pick = torch.multinomial(distance + 1e-12, 1, generator=generator)
        centres = torch.cat([centres, x[pick]])
    for _ in range(iters):
        labels = (x @ centres.T).argmax(dim=1)
        for c in range(k):
            if (labels == c).any():
                centres[c] = F.normalize(x[labels == c].mean(0), dim=0)
    return (x @ centres.T).argmax(dim=1)


def warm_start_gate(
    model: PersonalizedRewardModel, users: torch.Tensor, steps: int = 300, seed: int = 0
) -> torch.Tensor:
    """Fit the gate to a k-means partition of ``users`` (k = experts) so that distant users start
    on different experts; returns the labels. The gate keeps training with the reward model."""
    labels = kmeans(users, model.config.n_experts, seed=seed).to(model.device)
    optimizer = torch.optim.Adam(model.gate.parameters(), lr=1e-2)
    inputs = F.normalize(users.to(model.device).float(), dim=-1)
    for _ in range(steps):
        loss = F.cross_entropy(model.gate.net(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return labels


@dataclass
class CoPLFit:
    """Both trained halves of CoPL, the reward model's per-step losses and the calibration of
    the graph's weight beside the reward (``reward_model.graph_weight``)."""

    embeddings: UserEmbeddings
    reward_model: PersonalizedRewardModel
    losses: list[float]
    calibration: Calibration | None = None


def fit_copl(
    pairs: Sequence[tuple[str, str, str, str]],
    gnn_config: GNNConfig | None = None,
    mole_config: MoLEConfig | None = None,
    train_config: RewardTrainConfig | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> CoPLFit:
    """The whole CoPL fit from (user_id, prompt, chosen, rejected) pairs: signed graph, GNN user
    embeddings, then the MoLE reward model gated by them (``mole_config.user_dim`` is set to the
    GNN width), then the graph's weight in the personalized score
    (``workers.collab.graph_mix``). What a ``gpu`` queue task runs before saving both artifacts."""
    graph = build_graph([(user, chosen, rejected) for user, _, chosen, rejected in pairs])
    embeddings = train_gnn(graph, gnn_config, progress=progress, device=device)
    config = replace(mole_config or MoLEConfig(), user_dim=embeddings.dim)
    model = build_reward_model(config, device=device)
    rows = embeddings.user_index()
    examples = [RewardExample(rows[u], c, r, p) for u, p, c, r in pairs]
    keys = [(e.prompt, text) for e in examples for text in (e.chosen, e.rejected)]
    cache = encode_frozen(model, keys, progress=progress)
    losses = train_reward_model(model, examples, embeddings.users, train_config, cache, progress)
    calibration = calibrate_graph_weight(
        model, embeddings, pairs, gnn_config, cache=cache, device=device
    )
    model.graph_weight = calibration.weight
    return CoPLFit(embeddings, model, losses, calibration)
