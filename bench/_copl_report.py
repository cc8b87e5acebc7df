"""The CoPL benchmark's output: the accuracy table with its targets, the starting-η probe and the
user-embedding map (``bench/copl.py`` runs the seeds).

Rows: the baselines, **graph alone** (the GNN's dot-product preference, on the test pairs whose
texts are in the graph), **CoPL reward** (the reward model alone, CoPL before the graph mix) and
**CoPL** (reward + w * graph score, the product's scoring), then **on graph's**: CoPL on the
pairs the graph alone is scored on (both texts in the graph), which "never below the graph alone"
compares in every column."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from workers.collab.data import PreferenceDataset
from workers.collab.uses import starting_eta

if TYPE_CHECKING:
    from bench.copl import SeedResult
    from workers.collab.gnn import UserEmbeddings
    from workers.collab.reward import PersonalizedRewardModel

METHODS = ("global BT", "per-user", "LoRe", "graph alone", "CoPL reward", "CoPL")
SAME_PAIRS = "CoPL, graph's pairs"
"""CoPL on the test pairs whose texts are in the graph: the pairs "graph alone" is scored on."""


def mean_std(values: Sequence[float]) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "n/a"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):5.1f} ± {100 * spread:4.1f}"


def report(results: Sequence[SeedResult], command: str, title: str = "") -> None:
    print(f"\nCoPL benchmark ({len(results)} seed(s)), pairwise accuracy in %, mean ± std")
    if title:
        print(f"data: {title}")
    print(f"{'method':<12} {'seen':>13} {'unseen (4)':>13} {'seen <=8':>13}")
    for method in (*METHODS, SAME_PAIRS):
        cells = [
            mean_std([r.acc[method][c] for r in results]) for c in ("seen", "unseen", "<=8 pairs")
        ]
        name = "  on graph's" if method == SAME_PAIRS else method
        print(f"{name:<12} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13}")
    print("\ntimings per seed, wall / CPU seconds (mean; a shared machine makes them noisy):")
    cells = []
    for stage in [*results[0].seconds, "total"]:

        def of(times: dict[str, float], stage: str = stage) -> float:
            return sum(times.values()) if stage == "total" else times[stage]

        wall = statistics.mean(of(r.seconds) for r in results)
        cpu = statistics.mean(of(r.cpu) for r in results)
        cells.append(f"{stage} {wall:.0f}/{cpu:.0f}")
    print("  " + "  ".join(cells))
    print("diagnostics (mean over seeds):")
    for key in results[0].notes:
        print(f"  {key}: {statistics.mean(r.notes.get(key, 0.0) for r in results):.3g}")

    def mean(method: str, column: str) -> float:
        values = [r.acc[method][column] for r in results]
        values = [v for v in values if v == v]
        return 100 * statistics.mean(values) if values else float("nan")

    checks = [
        ("CoPL - global, seen", mean("CoPL", "seen") - mean("global BT", "seen"), 15.0),
        ("CoPL - global, unseen", mean("CoPL", "unseen") - mean("global BT", "unseen"), 10.0),
        ("CoPL - per-user, <=8", mean("CoPL", "<=8 pairs") - mean("per-user", "<=8 pairs"), 0.0),
    ]
    for column in ("seen", "unseen", "<=8 pairs"):
        # on the same pairs: the graph's pairs (n/a when no test pair is in the graph)
        gap = mean(SAME_PAIRS, column) - mean("graph alone", column)
        if gap == gap:
            checks.append((f"CoPL - graph alone, {column} (graph's pairs)", gap, 0.0))
    print("targets:")
    for name, gap, need in checks:
        verdict = "met" if gap >= need else "NOT met"
        print(f"  {name}: {gap:+.1f} points (need >= {need:+.0f}): {verdict}")
    print(f"command: {command}")


def diagnostics(
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


def eta_probe(data: PreferenceDataset, result: SeedResult) -> None:
    """Starting eta of each group's centroid user, from the reward model (last seed)."""
    groups, embeddings, model = data.groups(), result.embeddings, result.model
    if not groups or embeddings is None or model is None:
        return
    print("starting eta from the reward model (group centroid; own attribute first):")
    for group in sorted(set(groups.values())):
        rows = [i for i, u in enumerate(embeddings.user_ids) if groups.get(u) == group]
        centroid = embeddings.users[rows].mean(0)
        eta = starting_eta(model, centroid, contexts_per_source=1)
        others = [abs(v) for k, v in eta.items() if k != group]
        own = f"{eta[group]:+.2f}" if group in eta else "n/a"
        print(f"  {group:<16} own {own}   mean |other| {statistics.mean(others):.2f}")


def plot_map(path: str, data: PreferenceDataset, result: SeedResult) -> None:
    """2-D PCA of the last seed's user embeddings, coloured by group; unseen users as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    embeddings, groups = result.embeddings, data.groups()
    assert embeddings is not None
    unseen_ids = list(result.unseen)
    stacked = torch.cat([embeddings.users] + [result.unseen[u][None] for u in unseen_ids])
    centred = stacked - stacked.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    xy = (centred @ v[:2].T).numpy()
    labels = [groups.get(u, "unknown") for u in [*embeddings.user_ids, *unseen_ids]]
    n_seen = len(embeddings.user_ids)
    fig, ax = plt.subplots(figsize=(7, 6))
    for i, name in enumerate(sorted(set(labels))):
        colour = plt.cm.tab10(i % 10)
        seen = [k for k in range(n_seen) if labels[k] == name]
        new = [k for k in range(n_seen, len(labels)) if labels[k] == name]
        ax.scatter(xy[seen, 0], xy[seen, 1], s=12, color=colour, label=f"{name} (seen)")
        if new:
            ax.scatter(
                xy[new, 0], xy[new, 1], s=60, marker="x", color=colour, label=f"{name} (unseen)"
            )
    ax.set_title("CoPL user embeddings (PCA); x = unseen users after cold start")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")
