"""CoPL: personalized reward accuracy, seen and unseen users, against global / per-user / LoRe.

    ./attune bench copl [--data FILE.jsonl] [--seeds 3] [--quick] [--plot map.png] [--save DIR]

Without ``--data`` each seed generates UF-P-like data from the offline world (workers.collab.ufp);
with it, the file is used as is and seeds only change model initialization. Per seed: frozen
MiniLM encodings of every text (features for the baselines, prefix cache for CoPL), the signed GNN
on the train pairs, the MoLE reward model trained on them, the optimization-free cold start of
unseen users from their ``unseen_train`` pairs, then pairwise accuracy on ``test`` (seen users) and
``unseen_test`` pairs. Figures are mean +- std over seeds; timings are wall-clock (and CPU) seconds
on a machine that may be shared, so they are noisy.
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads of a
# descheduled process slow small torch ops several-fold. Only effective before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch

from bench._copl_report import METHODS, eta_probe, plot_map, report
from workers.collab import baselines as bl
from workers.collab.coldstart import adapt_user
from workers.collab.data import PreferenceDataset, PreferencePair, load_jsonl
from workers.collab.gnn import GNNConfig, UserEmbeddings, save_embeddings, train_gnn
from workers.collab.graph import build_graph
from workers.collab.reward import MoLEConfig, PersonalizedRewardModel, build_reward_model
from workers.collab.reward_artifacts import next_version_dir, save_reward_model
from workers.collab.reward_training import (
    FrozenEncoding,
    RewardExample,
    RewardTrainConfig,
    encode_frozen,
    train_reward_model,
)
from workers.collab.ufp import UFPConfig, generate_ufp


@dataclass(frozen=True)
class Sizes:
    """What one bench run generates and trains."""

    users: int = 300
    pool_pairs: int = 400
    test_pool_pairs: int = 150
    gnn: GNNConfig = field(
        default_factory=lambda: GNNConfig(dim=64, layers=4, edge_dropout=0.1, epochs=150)
    )
    mole: MoLEConfig = field(
        default_factory=lambda: MoLEConfig(user_dim=64, layers=(5,), max_length=64)
    )
    train: RewardTrainConfig = field(
        default_factory=lambda: RewardTrainConfig(epochs=1, batch_size=32, lr=5e-3)
    )
    lore_rank: int = 8


FULL = Sizes()
"""MiniLM with the MoLE (8 experts + shared, r=8) on every linear layer of its last layer."""
QUICK = Sizes(
    users=100,
    pool_pairs=120,
    test_pool_pairs=50,
    gnn=GNNConfig(dim=64, layers=4, edge_dropout=0.1, epochs=100),
    mole=MoLEConfig(
        user_dim=64, layers=(5,), target_modules=("intermediate.dense", "output.dense")
    ),
    train=RewardTrainConfig(epochs=2, batch_size=32, lr=5e-3),
)
"""Fewer users, the MoLE on the last layer's feed-forward only, two epochs."""


@dataclass
class SeedResult:
    """Accuracies (method -> column -> value), timings (stage -> seconds) and diagnostics."""

    acc: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    notes: dict[str, float] = field(default_factory=dict)
    embeddings: UserEmbeddings | None = None
    unseen: dict[str, torch.Tensor] = field(default_factory=dict)
    model: PersonalizedRewardModel | None = None


class Clock:
    """Accumulates wall-clock and CPU seconds per stage."""

    def __init__(self, wall: dict[str, float], cpu: dict[str, float]):
        self.wall, self.cpu = wall, cpu
        self.start, self.start_cpu = time.perf_counter(), time.process_time()

    def lap(self, stage: str) -> None:
        now, now_cpu = time.perf_counter(), time.process_time()
        self.wall[stage] = self.wall.get(stage, 0.0) + now - self.start
        self.cpu[stage] = self.cpu.get(stage, 0.0) + now_cpu - self.start_cpu
        self.start, self.start_cpu = now, now_cpu


def run_seed(data: PreferenceDataset, sizes: Sizes, seed: int, progress: bool) -> SeedResult:
    """Train and evaluate every method once; see the module docstring."""
    result = SeedResult()
    clock = Clock(result.seconds, result.cpu)
    train, test, unseen_test = data.split("train"), data.split("test"), data.split("unseen_test")
    n_train = Counter(p.user_id for p in train)
    small = torch.tensor([n_train[p.user_id] <= 8 for p in test], dtype=torch.bool)

    torch.manual_seed(seed)
    model = build_reward_model(sizes.mole)
    keys = [model.key(p.prompt, t) for p in data.pairs for t in (p.chosen, p.rejected)]
    cache = encode_frozen(model, keys, progress=progress)
    clock.lap("encode")

    graph = build_graph([(p.user_id, p.chosen, p.rejected) for p in train])
    embeddings = train_gnn(graph, replace(sizes.gnn, seed=seed), progress=progress)
    clock.lap("gnn")
    rows = embeddings.user_index()
    examples = [RewardExample(rows[p.user_id], p.chosen, p.rejected, p.prompt) for p in train]
    train_cfg = replace(sizes.train, seed=seed)
    train_reward_model(model, examples, embeddings.users, train_cfg, cache, progress)
    clock.lap("reward")

    by_user = data.by_user("unseen_train")
    fallback = torch.nn.functional.normalize(embeddings.users.mean(0), dim=0)
    methods: Counter[str] = Counter()
    for user, pairs in by_user.items():
        adapted = adapt_user([(p.chosen, p.rejected) for p in pairs], embeddings)
        methods[adapted.method if adapted else "mean"] += 1
        result.unseen[user] = adapted.embedding if adapted else fallback
    clock.lap("coldstart")

    def copl_margins(pairs: Sequence[PreferencePair]) -> torch.Tensor:
        if not pairs:
            return torch.empty(0)
        vectors = torch.stack(
            [
                embeddings.users[rows[p.user_id]] if p.user_id in rows else result.unseen[p.user_id]
                for p in pairs
            ]
        )
        texts = [p.chosen for p in pairs] + [p.rejected for p in pairs]
        prompts = [p.prompt for p in pairs] * 2
        rewards = model.score(torch.cat([vectors, vectors]), texts, prompts, cache=cache)
        return rewards[: len(pairs)] - rewards[len(pairs) :]

    result.acc["CoPL"] = _columns(copl_margins(test), copl_margins(unseen_test), small)
    clock.lap("eval")

    _baselines(data, sizes, seed, model, cache, small, result)
    clock.lap("baselines")
    _diagnostics(data, embeddings, model, result, methods)
    result.embeddings, result.model = embeddings, model
    return result


def _columns(seen: torch.Tensor, unseen: torch.Tensor, small: torch.Tensor) -> dict[str, float]:
    """The three accuracy columns; ``small`` marks the test pairs of users with <= 8 pairs."""
    return {
        "seen": bl.accuracy(seen),
        "unseen": bl.accuracy(unseen),
        "<=8 pairs": bl.accuracy(seen[small]),
    }


def _baselines(
    data: PreferenceDataset,
    sizes: Sizes,
    seed: int,
    model: PersonalizedRewardModel,
    cache: FrozenEncoding,
    small: torch.Tensor,
    result: SeedResult,
) -> None:
    """Global BT, per-user and LoRe on the frozen features of the cache."""
    features = cache.features

    def index(pairs: Sequence[PreferencePair], users: dict[str, int]) -> bl.PairIndex:
        def rows(text_of: Callable[[PreferencePair], str]) -> torch.Tensor:
            keys = [model.key(p.prompt, text_of(p)) for p in pairs]
            return torch.tensor([cache.index[k] for k in keys], dtype=torch.long)

        users_t = torch.tensor([users[p.user_id] for p in pairs], dtype=torch.long)
        return bl.PairIndex(users_t, rows(lambda p: p.chosen), rows(lambda p: p.rejected))

    seen_users = {u: i for i, u in enumerate(data.users("train", "test"))}
    new_users = {u: i for i, u in enumerate(data.users("unseen_train", "unseen_test"))}
    train, test = index(data.split("train"), seen_users), index(data.split("test"), seen_users)
    few, later = (
        index(data.split("unseen_train"), new_users),
        index(data.split("unseen_test"), new_users),
    )
    w = bl.fit_global(features, train)
    result.acc["global BT"] = _columns(
        bl.global_margins(w, features, test), bl.global_margins(w, features, later), small
    )
    per_seen = bl.fit_per_user(features, train, len(seen_users))
    per_new = bl.fit_per_user(features, few, len(new_users))
    result.acc["per-user"] = _columns(
        bl.per_user_margins(per_seen, features, test),
        bl.per_user_margins(per_new, features, later),
        small,
    )
    lore = bl.fit_lore(features, train, len(seen_users), rank=sizes.lore_rank, seed=seed)
    lore_new = bl.fit_lore_users(lore.basis, features, few, len(new_users))
    result.acc["LoRe"] = _columns(
        lore.margins(features, test), lore_new.margins(features, later), small
    )


def _diagnostics(
    data: PreferenceDataset,
    embeddings: UserEmbeddings,
    model: PersonalizedRewardModel,
    result: SeedResult,
    methods: Counter[str],
) -> None:
    """Cold-start sources; routing purity: the share of users whose expert serves mostly users
    of their own group (1.0: no expert mixes groups; a group may use several experts)."""
    groups = data.groups()
    result.notes["unseen via shared responses"] = methods["shared-response"]
    result.notes["unseen via all users / mean"] = methods["all-users"] + methods["mean"]
    if not groups:
        return
    with torch.no_grad():
        seen_experts = model.route(embeddings.users).expert.tolist()
    per_expert: dict[int, Counter[str]] = defaultdict(Counter)
    for user, expert in zip(embeddings.user_ids, seen_experts, strict=True):
        per_expert[expert][groups[user]] += 1
    owner = {e: c.most_common(1)[0][0] for e, c in per_expert.items()}
    pairs = zip(embeddings.user_ids, seen_experts, strict=True)
    result.notes["routing purity, seen"] = sum(owner[e] == groups[u] for u, e in pairs) / len(
        seen_experts
    )
    result.notes["experts in use"] = len(per_expert)
    if result.unseen:
        users = list(result.unseen)
        with torch.no_grad():
            experts = model.route(torch.stack([result.unseen[u] for u in users])).expert.tolist()
        ok = sum(owner.get(e) == groups.get(u) for u, e in zip(users, experts, strict=True))
        result.notes["routing purity, unseen"] = ok / len(users)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench copl", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", help="preference JSONL (user_id, prompt, chosen, rejected, split)"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller data and model (~2 min)")
    parser.add_argument("--users", type=int, help="override the number of generated users")
    parser.add_argument("--epochs", type=int, help="override the reward-model epochs")
    parser.add_argument("--plot", help="write a PNG of the user-embedding map (last seed)")
    parser.add_argument("--save", help="save the last seed's embeddings and reward model here")
    parser.add_argument("--progress", action="store_true", help="show tqdm progress bars")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    # Seeded runs repeat exactly: some CPU kernels (index accumulation) otherwise vary with threads.
    torch.use_deterministic_algorithms(True)
    sizes = QUICK if args.quick else FULL
    if args.users:
        sizes = replace(sizes, users=args.users)
    if args.epochs:
        sizes = replace(sizes, train=replace(sizes.train, epochs=args.epochs))
    fixed = load_jsonl(args.data) if args.data else None
    results: list[SeedResult] = []
    data = fixed
    run_started = time.perf_counter()
    for seed in range(args.seeds):
        started, started_cpu = time.perf_counter(), time.process_time()
        if fixed is None:
            config = UFPConfig(
                n_users=sizes.users,
                pool_pairs=sizes.pool_pairs,
                test_pool_pairs=sizes.test_pool_pairs,
                seed=seed,
            )
            data = PreferenceDataset(tuple(generate_ufp(config)))
        assert data is not None
        generated, generated_cpu = time.perf_counter() - started, time.process_time() - started_cpu
        result = run_seed(data, sizes, seed, args.progress)
        result.seconds = {"data": generated, **result.seconds}
        result.cpu = {"data": generated_cpu, **result.cpu}
        results.append(result)
        row = "  ".join(
            f"{m} {100 * result.acc[m]['seen']:.1f}/{100 * result.acc[m]['unseen']:.1f}"
            for m in METHODS
        )
        print(
            f"seed {seed}: seen/unseen  {row}  ({sum(result.seconds.values()):.0f} s)", flush=True
        )
    command = "./attune bench copl " + " ".join(argv)
    report(results, command.strip())
    assert data is not None
    eta_probe(data, results[-1])
    if args.plot:
        plot_map(args.plot, data, results[-1])
    if args.save:
        last = results[-1]
        assert last.embeddings is not None and last.model is not None
        gnn_dir = save_embeddings(last.embeddings, next_version_dir(f"{args.save}/gnn"))
        reward_dir = save_reward_model(
            last.model,
            next_version_dir(f"{args.save}/reward"),
            metrics={m: last.acc["CoPL"][m] for m in ("seen", "unseen")},
            user_embeddings_version=last.embeddings.version,
        )
        print(f"saved {gnn_dir} and {reward_dir}")
    print(f"whole run: {time.perf_counter() - run_started:.0f} s wall")
    return 0
