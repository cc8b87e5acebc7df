"""The scale benchmark's fill, part two: preference vectors, adapter versions, fit jobs, η, and
a CoPL version with an embedding per user (and its embeddings artifact in the store)."""

from __future__ import annotations

import json

import numpy as np

from bench._scale_copy import Filler, jsonb, stamps
from bench._scale_fill import DAYS, Plan


def active_users(shape: Plan) -> np.ndarray:
    """The most active users (up to 2,000, at most a fifth): the ones with adapters and η."""
    k = max(1, min(2000, shape.users // 5))
    return np.argsort(shape.counts)[::-1][:k] + 1


def fill_adapters(filler: Filler, shape: Plan, rng: np.random.Generator, now: float) -> None:
    from apps.adapters.models import AdapterVersion, FitJob, PreferenceCoefficient, PreferenceVector
    from core.dimensions import OFFLINE_DIMENSIONS

    dims = OFFLINE_DIMENSIONS
    made = stamps(np.full(len(dims), now - DAYS * 86400))
    filler.copy(
        PreferenceVector,
        len(dims),
        {
            "id": [str(i) for i in range(1, len(dims) + 1)],
            "name": [d.name for d in dims],
            "attribute": [d.attribute for d in dims],
            "positive": [d.positive for d in dims],
            "negative": [d.negative for d in dims],
            "base_model": "attune/style-lm",
            "base_fingerprint": "0" * 64,
            "rank": "8",
            "positive_path": "sha256:" + "1" * 64,
            "negative_path": "sha256:" + "2" * 64,
            "created_at": made,
        },
    )
    active = active_users(shape)
    twice = active[: len(active) // 2]  # these were fitted twice: v1 retired, v2 active
    users = np.concatenate([twice, active])
    versions = np.concatenate([np.ones(len(twice), int), np.where(np.isin(active, twice), 2, 1)])
    failed = rng.choice(active, max(1, len(active) // 4))
    j = len(users) + len(failed)
    job_users = np.concatenate([users, failed])
    started = now - rng.random(j) * DAYS * 86400
    status = ["succeeded"] * len(users) + ["failed"] * len(failed)
    filler.copy(
        FitJob,
        j,
        {
            "id": [str(i) for i in range(1, j + 1)],
            "user_id": [str(u) for u in job_users],
            "kind": "user_adapter",
            "trigger": "threshold",
            "status": status,
            "progress": ["1.0" if s == "succeeded" else "0.4" for s in status],
            "loss": [f"{v:.4f}" for v in rng.random(j)],
            "attempts": "1",
            "queued_at": stamps(started - 5),
            "created_at": stamps(started - 5),
            "started_at": stamps(started),
            "heartbeat_at": stamps(started + 60),
            "finished_at": stamps(started + 90),
            "worker": "gpu@scale",
            "error": ["" if s == "succeeded" else "out of memory" for s in status],
        },
    )
    a = len(users)
    filler.copy(
        AdapterVersion,
        a,
        {
            "id": [str(i) for i in range(1, a + 1)],
            "user_id": [str(u) for u in users],
            "version": [str(v) for v in versions],
            "fit_job_id": [str(i) for i in range(1, a + 1)],
            "status": ["retired" if i < len(twice) else "active" for i in range(a)],
            "method": "dpo",
            "base_model": "attune/style-lm",
            "base_fingerprint": "0" * 64,
            "rank": "8",
            "target_modules": "{q_proj,v_proj}",
            "storage_path": [f"sha256:{i:064x}" for i in range(1, a + 1)],
            "data_counts": jsonb({"pairs": 40}),
            "training": jsonb({"epochs": 4}),
            "evaluation": jsonb({"heldout_accuracy": 0.71, "base_accuracy": 0.55}),
            "created_at": stamps(started[:a] + 90),
            "activated_at": stamps(started[:a] + 95),
        },
    )
    per = 3
    c = len(active) * per
    names = [dims[(i + k) % len(dims)].name for i in range(len(active)) for k in range(per)]
    filler.copy(
        PreferenceCoefficient,
        c,
        {
            "id": [str(i) for i in range(1, c + 1)],
            "user_id": [str(u) for u in np.repeat(active, per)],
            "vector_name": names,
            "eta": [f"{v:.2f}" for v in rng.uniform(-1.5, 1.5, c)],
            "origin": "fitted",
            "updated_at": stamps(np.full(c, now - 86400)),
        },
    )


def fill_collab(filler: Filler, shape: Plan, rng: np.random.Generator, now: float) -> None:
    from apps.collab.models import USER_EMBEDDING_DIMENSIONS, CollabModelVersion, UserEmbedding
    from core.dimensions import OFFLINE_DIMENSIONS

    n, dims = shape.users, USER_EMBEDDING_DIMENSIONS
    matrix = rng.standard_normal((n, dims), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    when = stamps(np.array([now - 86400]))[0]
    etas = {str(e): {OFFLINE_DIMENSIONS[e % 7].name: 0.5} for e in range(8)}
    filler.copy(
        CollabModelVersion,
        1,
        {
            "id": "1",
            "version": "1",
            "status": "active",
            "trigger": "command",
            "progress": "1.0",
            "stage": "done",
            "attempts": "1",
            "n_users": str(n),
            "n_responses": str(n * 4),
            "n_pairs": str(n * 3),
            "n_pos_edges": str(n * 3),
            "n_neg_edges": str(n * 3),
            "storage_path": embeddings_artifact(matrix, shape.users),
            "expert_eta": jsonb(etas),
            "created_at": when,
            "started_at": when,
            "finished_at": when,
            "activated_at": when,
        },
    )
    fmt = "[" + ",".join(["%.5f"] * dims) + "]"
    filler.copy(
        UserEmbedding,
        n,
        {
            "id": [str(i) for i in range(1, n + 1)],
            "user_id": [str(i) for i in range(1, n + 1)],
            "version_id": "1",
            "vector": [fmt % tuple(r) for r in matrix.tolist()],
            "expert": [str(e) for e in rng.integers(0, 8, n).tolist()],
            "n_pairs": [str(int(c) // 3) for c in shape.counts.tolist()],
            "created_at": when,
        },
    )


def embeddings_artifact(matrix: np.ndarray, users: int) -> str:
    """The version's ``embeddings/`` files (users only, no responses) in the artifact store."""
    import tempfile
    from pathlib import Path

    from safetensors.numpy import save_file

    from apps.collab.store import EMBEDDINGS
    from core import config

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / EMBEDDINGS
        folder.mkdir()
        save_file(
            {
                "users": matrix,
                "responses": np.zeros((0, matrix.shape[1]), np.float32),
                "chosen_edges": np.zeros((0, 2), np.int64),
            },
            str(folder / "embeddings.safetensors"),
        )
        meta = {
            "format": "attune.copl.user-embeddings",
            "user_ids": list(range(1, users + 1)),
            "texts": [],
        }
        (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        return config.artifact_store().put(Path(tmp))
