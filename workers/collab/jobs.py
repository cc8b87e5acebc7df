"""The body of a CoPL training run (the ``collab.train`` task on a ``gpu``-queue worker; torch).

Steps: everyone's pairs up to the run's cutoffs -> a stable held-out share per user -> the signed
graph (responses keyed by text hash) -> GNN user embeddings -> the mixture-of-LoRA reward model
gated by them -> the graph's weight beside the reward (``workers.collab.graph_mix``: a
calibration GNN without a held-out tenth of each user's pairs) -> held-out accuracy of the
personalized score (reward + w * graph score, what reranking uses) -> the reward's starting η
per expert -> files (safetensors + JSON) in the version's folder -> one transaction that stores
the embeddings in pgvector and activates the version. At size the graph keeps at most
``ATTUNE_COPL_MAX_USER_PAIRS`` pairs per user and the reward model trains on a fair share of
``ATTUNE_COPL_MAX_REWARD_PAIRS`` (see
:data:`LIMITS`), so the texts encoded and cached stay bounded. Idempotent: a retried run reads
the same data, rewrites the same folder and records its version once.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings

from apps.collab import services
from apps.collab.models import USER_EMBEDDING_DIMENSIONS, CollabModelVersion
from apps.feedback import selectors as feedback
from core.text import text_key
from workers.collab.expert_etas import dimension_etas
from workers.collab.sampling import fair_subset

if TYPE_CHECKING:
    import torch

    from workers.collab.gnn import GNNConfig, UserEmbeddings
    from workers.collab.graph_mix import GraphPrior
    from workers.collab.reward import MoLEConfig, PersonalizedRewardModel
    from workers.collab.reward_training import FrozenEncoding, RewardTrainConfig

log = logging.getLogger(__name__)
Progress = Callable[[float, str, float | None], None]
STAGES: dict[str, tuple[float, float]] = {
    "data": (0.0, 0.02),
    "gnn": (0.02, 0.35),
    "encode": (0.35, 0.45),
    "reward": (0.45, 0.85),
    "evaluate": (0.85, 0.9),
    "eta": (0.9, 0.96),
    "save": (0.96, 0.99),
}
ETA_CONTEXTS_PER_SOURCE = 2
LIMITS = {
    "ATTUNE_COPL_MAX_USER_PAIRS": 256,  # pairs of one user in the graph (and the reward model)
    "ATTUNE_COPL_MAX_REWARD_PAIRS": 4096,  # pairs the reward model trains on, fairly shared
    "ATTUNE_COPL_MAX_SCORED_PAIRS": 1024,  # train and held-out pairs whose accuracy is scored
}
"""What bounds a run's time and memory at any number of users (``workers.collab.sampling``); a
setting of the same name overrides each, 0 lifts it."""


def limit(name: str) -> int:
    return int(getattr(settings, name, LIMITS[name]))


class Reporter:
    """Maps a stage's own fraction to the run's, and reports at most every 1% (or stage)."""

    def __init__(self, lease: services.Lease, on_progress: Progress | None) -> None:
        self.lease = lease
        self.on_progress = on_progress
        self.last: tuple[str, float] = ("", -1.0)

    def __call__(self, stage: str, fraction: float, loss: float | None = None) -> None:
        low, high = STAGES[stage]
        overall = low + (high - low) * min(max(fraction, 0.0), 1.0)
        if stage == self.last[0] and overall - self.last[1] < 0.01 and fraction < 1.0:
            return
        self.last = (stage, overall)
        services.report_progress(self.lease, overall, stage, loss)
        if self.on_progress is not None:
            self.on_progress(overall, stage, loss)


def device() -> str:
    wanted = settings.ATTUNE_COPL_DEVICE
    if wanted != "auto":
        return wanted
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def gnn_config() -> GNNConfig:
    from workers.collab.gnn import GNNConfig

    return GNNConfig(dim=USER_EMBEDDING_DIMENSIONS, **settings.ATTUNE_COPL_GNN)


def mole_config() -> MoLEConfig:
    from workers.collab.reward import MoLEConfig

    raw = dict(settings.ATTUNE_COPL_REWARD)
    layers = str(raw.pop("layers", "all")).strip()
    parsed = None if layers in ("", "all") else tuple(int(x) for x in layers.split(","))
    return MoLEConfig(user_dim=USER_EMBEDDING_DIMENSIONS, layers=parsed, **raw)


def train_config() -> RewardTrainConfig:
    from workers.collab.reward_training import RewardTrainConfig

    return RewardTrainConfig(**settings.ATTUNE_COPL_TRAIN)


def run_training(version_id: int, on_progress: Progress | None = None) -> dict[str, Any]:
    """Run training run ``version_id`` to the end; returns a summary for the task result.

    The run is claimed first and its lease held (heartbeats) while it trains
    (:mod:`apps.common.leases`): a duplicate or late message, or one for a finished run, skips;
    an attempt that lost its lease (re-queued as dead, or superseded) stops without writing.
    """
    lease = services.start_run(version_id)
    if lease is None:
        status = CollabModelVersion.objects.filter(pk=version_id).values_list("status", flat=True)
        running = status.first() == CollabModelVersion.Status.RUNNING
        return {
            "version_id": version_id,
            "skipped": "held by another worker" if running else "already finished",
        }
    run = CollabModelVersion.objects.get(pk=version_id)
    with services.held(lease):
        try:
            return _train(run, Reporter(lease, on_progress))
        except services.LeaseLost:
            log.warning("CoPL run %s: attempt %s lost its lease; stopping", run.pk, lease.attempt)
            return {"version_id": version_id, "skipped": "lease lost"}
        except Exception as err:
            log.exception("CoPL training run %s failed", version_id)
            services.fail_run(lease, f"{type(err).__name__}: {err}")
            raise


def _accuracy(chosen: torch.Tensor, rejected: torch.Tensor) -> float | None:
    if not len(chosen):
        return None
    margin = chosen - rejected
    return round(float(((margin > 0).float() + 0.5 * (margin == 0).float()).mean()), 4)


def _reward_accuracy(
    model: PersonalizedRewardModel,
    embeddings: UserEmbeddings,
    items: Sequence[feedback.PreferencePair],
    cache: FrozenEncoding,
    graph: GraphPrior | None = None,
) -> float | None:
    """Accuracy of the personalized score (the reward alone when ``graph`` is None)."""
    from workers.collab.graph_mix import mixed_scores

    if not items:
        return None
    rows = embeddings.user_index()
    users = embeddings.users[[rows[str(p.user_id)] for p in items]]
    prompts = [p.prompt for p in items]

    def scores(texts: list[str]) -> torch.Tensor:
        keys = [text_key(t) for t in texts]
        return mixed_scores(model, users, texts, prompts, graph, keys, cache=cache)

    return _accuracy(scores([p.chosen for p in items]), scores([p.rejected for p in items]))


def _gnn_accuracy(
    embeddings: UserEmbeddings, items: Sequence[feedback.PreferencePair]
) -> float | None:
    index, rows = embeddings.text_index(), embeddings.user_index()
    known = [
        (rows[str(p.user_id)], index[text_key(p.chosen)], index[text_key(p.rejected)])
        for p in items
        if text_key(p.chosen) in index and text_key(p.rejected) in index
    ]
    if not known:
        return None
    users = embeddings.users[[u for u, _, _ in known]]
    chosen = (users * embeddings.responses[[c for _, c, _ in known]]).sum(-1)
    rejected = (users * embeddings.responses[[r for _, _, r in known]]).sum(-1)
    return _accuracy(chosen, rejected)


def _expert_etas(
    model: PersonalizedRewardModel, users: torch.Tensor, cache: FrozenEncoding, report: Reporter
) -> tuple[list[int], dict[str, dict[str, float]]]:
    """Each user's expert, and the reward's starting η (per preference vector) for each expert
    in use, read off the user most firmly routed to it (top-1 routing: the reward depends on
    the user only through the expert)."""
    from workers.collab.uses import starting_eta

    routing = model.route(users)
    experts = routing.expert.cpu()
    probs = routing.probs.detach().cpu()
    used = sorted(set(experts.tolist()))
    etas: dict[str, dict[str, float]] = {}
    for n, expert in enumerate(used):
        members = (experts == expert).nonzero().flatten()
        best = members[probs[members, expert].argmax()]
        raw = starting_eta(model, users[best], ETA_CONTEXTS_PER_SOURCE, cache=cache)
        etas[str(expert)] = dimension_etas(raw)
        report("eta", (n + 1) / len(used))
    return experts.tolist(), etas


def _train(run: CollabModelVersion, report: Reporter) -> dict[str, Any]:
    import torch

    from workers.collab.gnn import save_embeddings, train_gnn
    from workers.collab.graph import build_graph
    from workers.collab.graph_mix import GraphPrior, calibrate_graph_weight
    from workers.collab.reward import build_reward_model
    from workers.collab.reward_artifacts import save_reward_model
    from workers.collab.reward_training import RewardExample, encode_frozen, train_reward_model
    from workers.collab.uses import eta_probes

    started = time.monotonic()
    timings: dict[str, float] = {}
    report("data", 0.0)
    everything = feedback.preference_pairs(upto=feedback.Cutoffs.of(run))
    if not everything:
        raise ValueError("no preference pairs up to this run's cutoffs (deleted since?)")
    report("data", 0.5)
    train, heldout = feedback.split_heldout(everything, settings.ATTUNE_COPL_HELDOUT_SHARE)
    del everything
    used = fair_subset(train, per_user=limit("ATTUNE_COPL_MAX_USER_PAIRS"))
    user_ids = sorted({p.user_id for p in used})
    graph = build_graph(
        [(str(p.user_id), text_key(p.chosen), text_key(p.rejected)) for p in used],
        user_ids=[str(u) for u in user_ids],
    )
    report("data", 1.0)

    where = device()
    gnn_cfg, mole_cfg, train_cfg = gnn_config(), mole_config(), train_config()
    embeddings = train_gnn(
        graph,
        gnn_cfg,
        device=where,
        on_epoch=lambda epoch, loss: report("gnn", (epoch + 1) / gnn_cfg.epochs, loss),
    )
    timings["gnn"] = time.monotonic() - started

    torch.manual_seed(train_cfg.seed)
    model = build_reward_model(mole_cfg, device=where)
    rows = embeddings.user_index()
    rewarded = fair_subset(used, total=limit("ATTUNE_COPL_MAX_REWARD_PAIRS"))
    examples = [
        RewardExample(rows[str(p.user_id)], p.chosen, p.rejected, p.prompt) for p in rewarded
    ]
    scored = limit("ATTUNE_COPL_MAX_SCORED_PAIRS")
    scored_train, scored_heldout = (
        fair_subset(rewarded, total=scored),
        fair_subset(heldout, total=scored),
    )
    _, probe_texts = eta_probes(ETA_CONTEXTS_PER_SOURCE)
    report("encode", 0.0)
    keys = [(p.prompt, t) for p in (*rewarded, *scored_heldout) for t in (p.chosen, p.rejected)]
    cache = encode_frozen(
        model,
        keys + [("", text) for text in probe_texts],
        prefix_dtype=torch.float16,  # half the memory of the cached hidden states
        on_batch=lambda done, total: report("encode", done / total),
    )
    report("encode", 1.0)
    losses = train_reward_model(
        model,
        examples,
        embeddings.users,
        train_cfg,
        cache,
        on_step=lambda step, total, loss: report("reward", step / total, loss),
    )
    timings["reward"] = time.monotonic() - started - timings["gnn"]

    report("evaluate", 0.0)
    calibration = calibrate_graph_weight(
        model,
        embeddings,
        [(str(p.user_id), p.prompt, p.chosen, p.rejected) for p in used],
        gnn_cfg,
        key=text_key,
        cache=cache,
        device=where,
        max_pairs=scored,
    )
    model.graph_weight = calibration.weight
    timings["calibrate"] = time.monotonic() - started - timings["gnn"] - timings["reward"]
    graph_prior = GraphPrior.of(embeddings.texts, embeddings.responses)
    report("evaluate", 0.5)
    metrics: dict[str, Any] = {
        "gnn_loss": round(embeddings.history[-1], 5) if embeddings.history else None,
        "reward_loss": round(sum(losses[-10:]) / len(losses[-10:]), 5) if losses else None,
        "graph_weight": round(calibration.weight, 4),
        "calibration_pairs": calibration.pairs,
        "train_accuracy": _reward_accuracy(model, embeddings, scored_train, cache, graph_prior),
        "heldout_accuracy": _reward_accuracy(model, embeddings, scored_heldout, cache, graph_prior),
        "reward_heldout_accuracy": _reward_accuracy(model, embeddings, scored_heldout, cache),
        "gnn_heldout_accuracy": _gnn_accuracy(embeddings, heldout),
        "heldout_pairs": len(heldout),
        "graph_pairs": len(used),
        "reward_pairs": len(rewarded),
        "scored_pairs": {"train": len(scored_train), "heldout": len(scored_heldout)},
    }
    report("evaluate", 1.0)
    experts, expert_eta = _expert_etas(model, embeddings.users, cache, report)
    metrics["experts_used"] = len(expert_eta)

    report("save", 0.0)
    files = services.fresh_version_files(run)
    save_embeddings(embeddings, files.embeddings)
    save_reward_model(
        model, files.reward, {k: v for k, v in metrics.items() if isinstance(v, float)},
        embeddings.version,
    )  # fmt: skip
    metrics["seconds"] = {
        **{k: round(v, 2) for k, v in timings.items()},
        "total": round(time.monotonic() - started, 2),
    }
    metrics["device"] = str(where)
    report("save", 1.0)

    counts = Counter(p.user_id for p in used)
    vectors = embeddings.users.tolist()
    result_rows = [
        services.EmbeddingRow(user_id, vectors[i], experts[i], counts[user_id])
        for i, user_id in enumerate(int(u) for u in embeddings.user_ids)
    ]
    version = services.record_result(
        report.lease,
        result_rows,
        n_users=graph.n_users,
        n_responses=graph.n_responses,
        n_pairs=len(train),
        n_heldout=len(heldout),
        n_pos_edges=len(graph.pos_edges),
        n_neg_edges=len(graph.neg_edges),
        dimensions=embeddings.dim,
        storage_path=files.publish(),
        embeddings_hash=embeddings.version,
        config={
            "gnn": _plain(gnn_cfg),
            "reward_model": _plain(mole_cfg),
            "reward_training": _plain(train_cfg),
        },
        metrics=metrics,
        expert_eta=expert_eta,
    )
    return {"version_id": version.pk, "version": version.version, "status": version.status}


def _plain(config: object) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
