"""CoPL: personalized reward accuracy, seen and unseen users, against baselines and the graph.

    ./attune bench copl [--data FILE.jsonl] [--seeds 3] [--quick] [--shared-taste 0,0.5]
                        [--plot map.png] [--save DIR]

Without ``--data`` each seed generates UF-P-like data from the offline world (workers.collab.ufp);
with it, the file is used as is and seeds only change model initialization. ``--shared-taste``
takes one share or a comma list: each share is a generator setting (0: today's data; 0.5: the
harder data, where half of each group's train-pool pairs are labelled by the group's random taste
over specific texts and test pairs come from the train pool), run over all seeds with its own
table; ``--shared-taste 0,0.5`` prints both. Per seed: frozen MiniLM encodings of every text
(features for the baselines, prefix cache for CoPL), the signed GNN on the train pairs, the MoLE
reward model trained on them, the graph's weight beside the reward (a calibration GNN without a
held-out tenth of each user's train pairs; ``workers.collab.graph_mix``), the optimization-free
cold start of unseen users from their ``unseen_train`` pairs, then pairwise accuracy on ``test``
(seen users) and ``unseen_test`` pairs.

Rows: the baselines; **graph alone**, the GNN's own preference ``u . (e_c - e_r)``, on the test
pairs whose two texts are response nodes of the graph (n/a when none is); **CoPL reward**, the
reward model alone (CoPL as it was before the graph mix); **CoPL**, the product's score, reward
plus ``w`` times the graph's score. Figures are mean +- std over seeds; timings are wall-clock
(and CPU) seconds on a machine that may be shared, so they are noisy.
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads of a
# descheduled process slow small torch ops several-fold. Only effective before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch

from bench._copl_report import METHODS, SAME_PAIRS, diagnostics, eta_probe, plot_map, report
from workers.collab import baselines as bl
from workers.collab.coldstart import adapt_user
from workers.collab.data import PreferenceDataset, PreferencePair, load_jsonl
from workers.collab.gnn import GNNConfig, UserEmbeddings, save_embeddings, train_gnn
from workers.collab.graph import build_graph
from workers.collab.graph_mix import GraphPrior, calibrate_graph_weight, mixed_scores
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
    calibration = calibrate_graph_weight(
        model,
        embeddings,
        [(p.user_id, p.prompt, p.chosen, p.rejected) for p in train],
        replace(sizes.gnn, seed=seed),
        cache=cache,
    )
    model.graph_weight = calibration.weight
    result.notes["graph weight w"] = calibration.weight
    result.notes["calibration pairs"] = calibration.pairs
    clock.lap("calibrate")

    by_user = data.by_user("unseen_train")
    fallback = torch.nn.functional.normalize(embeddings.users.mean(0), dim=0)
    methods: Counter[str] = Counter()
    for user, pairs in by_user.items():
        adapted = adapt_user([(p.chosen, p.rejected) for p in pairs], embeddings)
        methods[adapted.method if adapted else "mean"] += 1
        result.unseen[user] = adapted.embedding if adapted else fallback
    clock.lap("coldstart")

    graph = GraphPrior.of(embeddings.texts, embeddings.responses)

    def vectors_of(pairs: Sequence[PreferencePair]) -> torch.Tensor:
        return torch.stack(
            [
                embeddings.users[rows[p.user_id]] if p.user_id in rows else result.unseen[p.user_id]
                for p in pairs
            ]
        )

    def copl_margins(pairs: Sequence[PreferencePair], mixed: bool) -> torch.Tensor:
        if not pairs:
            return torch.empty(0)
        vectors = vectors_of(pairs)
        texts = [p.chosen for p in pairs] + [p.rejected for p in pairs]
        prompts = [p.prompt for p in pairs] * 2
        users = torch.cat([vectors, vectors])
        if not mixed:
            rewards = model.score(users, texts, prompts, cache=cache)
        else:
            rewards = mixed_scores(model, users, texts, prompts, graph, cache=cache)
        return rewards[: len(pairs)] - rewards[len(pairs) :]

    def graph_margins(pairs: Sequence[PreferencePair]) -> tuple[torch.Tensor, torch.Tensor]:
        if not pairs:
            return torch.empty(0), torch.empty(0, dtype=torch.bool)
        vectors = vectors_of(pairs)
        chosen = graph.scores(vectors, [p.chosen for p in pairs])
        rejected = graph.scores(vectors, [p.rejected for p in pairs])
        known = graph.known([p.chosen for p in pairs]) & graph.known([p.rejected for p in pairs])
        return chosen - rejected, known

    seen_mixed, unseen_mixed = copl_margins(test, True), copl_margins(unseen_test, True)
    result.acc["CoPL reward"] = _columns(
        copl_margins(test, False), copl_margins(unseen_test, False), small
    )
    result.acc["CoPL"] = _columns(seen_mixed, unseen_mixed, small)
    (seen_graph, seen_known), (unseen_graph, unseen_known) = (
        graph_margins(test),
        graph_margins(unseen_test),
    )
    result.acc["graph alone"] = _columns(
        seen_graph[seen_known], unseen_graph[unseen_known], small[seen_known]
    )
    # CoPL on the same pairs as the graph alone: what "keeps what the graph knows" compares
    result.acc[SAME_PAIRS] = _columns(
        seen_mixed[seen_known], unseen_mixed[unseen_known], small[seen_known]
    )
    result.notes["test pairs in the graph, seen"] = float(seen_known.float().mean())
    if len(unseen_known):
        result.notes["test pairs in the graph, unseen"] = float(unseen_known.float().mean())
    clock.lap("eval")

    _baselines(data, sizes, seed, model, cache, small, result)
    clock.lap("baselines")
    diagnostics(data, embeddings, model, result, methods)
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


def _shares(text: str) -> list[float]:
    try:
        shares = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of numbers: {text!r}") from None
    if not shares or any(not 0.0 <= share <= 1.0 for share in shares):
        raise argparse.ArgumentTypeError("shares must lie in [0, 1]")
    return shares


def run_generator(
    args: argparse.Namespace, sizes: Sizes, share: float | None
) -> tuple[list[SeedResult], PreferenceDataset]:
    """Every seed on one generator setting (``share``; None: the ``--data`` file)."""
    fixed = load_jsonl(args.data) if share is None else None
    results: list[SeedResult] = []
    data = fixed
    for seed in range(args.seeds):
        started, started_cpu = time.perf_counter(), time.process_time()
        if fixed is None:
            config = UFPConfig(
                n_users=sizes.users,
                pool_pairs=sizes.pool_pairs,
                test_pool_pairs=sizes.test_pool_pairs,
                seed=seed,
                shared_taste=share or 0.0,
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
    assert data is not None
    return results, data


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bench copl",
        description=__doc__.splitlines()[0],
        epilog="Rows: graph alone = the GNN's own preference on test pairs whose texts are in "
        "the graph; CoPL reward = the reward model alone (before the graph mix); CoPL = reward "
        "+ w * graph score (the product's scoring).",
    )
    parser.add_argument(
        "--data", help="preference JSONL (user_id, prompt, chosen, rejected, split)"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller data and model (~2 min)")
    parser.add_argument(
        "--shared-taste",
        type=_shares,
        default=[0.0],
        metavar="S[,S...]",
        help="generated data only: share of each group's train-pool pairs labelled by the "
        "group's random taste over specific texts (0: today's data; > 0: the harder data, test "
        "pairs from the train pool); a comma list runs each and prints a table per share",
    )
    parser.add_argument("--users", type=int, help="override the number of generated users")
    parser.add_argument("--epochs", type=int, help="override the reward-model epochs")
    parser.add_argument("--plot", help="write a PNG of the user-embedding map (last seed)")
    parser.add_argument("--save", help="save the last seed's embeddings and reward model here")
    parser.add_argument("--progress", action="store_true", help="show tqdm progress bars")
    args = parser.parse_args(argv)
    if args.data and args.shared_taste != [0.0]:
        parser.error("--shared-taste applies to generated data, not to --data")
    torch.set_num_threads(2)
    # Seeded runs repeat exactly: some CPU kernels (index accumulation) otherwise vary with threads.
    torch.use_deterministic_algorithms(True)
    sizes = QUICK if args.quick else FULL
    if args.users:
        sizes = replace(sizes, users=args.users)
    if args.epochs:
        sizes = replace(sizes, train=replace(sizes.train, epochs=args.epochs))
    run_started = time.perf_counter()
    command = ("./attune bench copl " + " ".join(argv)).strip()
    shares: list[float | None] = [None] if args.data else list(args.shared_taste)
    for share in shares:
        title = f"file {args.data}" if share is None else f"generated, shared_taste={share:g}"
        print(f"\n== {title} ==", flush=True)
        results, data = run_generator(args, sizes, share)
        report(results, command, title)
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
