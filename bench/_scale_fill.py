"""The scale benchmark's fill: a migrated scratch database filled with PostgreSQL ``COPY``.

The shape (``plan``): Zipf activity (the heaviest person has ``min(50,000, 5 %)`` of the
interactions, the exponent is solved so the counts add up), ratings on ~30 % of interactions,
edits on ~10 % (the heaviest person edits enough to hold ≥ 10,000 memory entries), comparisons on
~5 %, a memory entry per edit that changed the text, personas for half the people, adapter
versions, fit jobs and η for the most active ones, preference vectors, a CoPL version with an
embedding per user (and its embeddings artifact), client apps whose end users are a fifth of the
users. Texts come from the offline world (``core.world``): a pool of contexts rendered in random
styles. Embeddings are random unit vectors (numpy), written as vector text.

How each table is written (indexes rebuilt after, constraints and triggers kept, defaults for
unnamed columns): :mod:`bench._scale_copy`. Adapters and CoPL: :mod:`bench._scale_fill_adapters`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from bench._scale_copy import Filler, esc, jsonb, stamps, vectors

EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
POOL_SIZE = 600
DAYS = 180


@dataclass
class Plan:
    """Who does how much: per-user interaction counts and the per-interaction feedback flags."""

    users: int
    interactions: int
    seed: int
    counts: np.ndarray  # interactions per user, index = user id - 1
    heaviest: int  # user id
    typical: int  # user id of median activity
    end_users: np.ndarray  # bool per user
    app_of: np.ndarray  # client app id per user (0: a person)
    apps: int
    exponent: float


def zipf_counts(users: int, total: int, top: int) -> tuple[np.ndarray, float]:
    """Counts ``round(top / rank^s)`` (at least 1) adding up to ``total``, ``s`` by bisection."""
    if total < users:
        raise ValueError(f"{total} interactions cannot give each of {users} users one")
    ranks = np.arange(1, users + 1, dtype=np.float64)

    def counts(s: float) -> np.ndarray:
        return np.maximum(1, np.round(top / ranks**s)).astype(np.int64)

    low, high = 0.0, 8.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if counts(mid).sum() > total else (low, mid)
    result = counts(high)
    gap = total - int(result.sum())
    step = 1 if gap > 0 else -1
    i = 1
    while gap:  # spread the rounding error over ranks 2.., keeping the order and the floor of 1
        j = 1 + (i % (users - 1)) if users > 1 else 0
        if (step > 0 and result[j] < top) or (step < 0 and result[j] > 1):
            result[j] += step
            gap -= step
        i += 1
    return np.sort(result)[::-1], high


def plan(users: int, interactions: int, seed: int) -> Plan:
    rng = np.random.default_rng(seed)
    top = max(1, min(50_000, interactions // 20))
    by_rank, exponent = zipf_counts(users, interactions, top)
    order = rng.permutation(users)  # rank r goes to user id order[r] + 1
    counts = np.empty(users, dtype=np.int64)
    counts[order] = by_rank
    apps = max(1, min(5, users // 10))
    end_users = rng.random(users) < 0.2
    end_users[order[0]] = False  # the heaviest and the app owners are people
    end_users[: apps + 2] = False
    app_of = np.where(end_users, rng.integers(1, apps + 1, users), 0)
    typical = int(order[users // 2]) + 1
    return Plan(
        users,
        interactions,
        seed,
        counts,
        int(order[0]) + 1,
        typical,
        end_users,
        app_of,
        apps,
        exponent,
    )


# --- texts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """Pre-escaped texts: prompt, source, output, edited, distance, diff, preference phrase."""

    prompt: list[str]
    source: list[str]
    output: list[str]
    edited: list[str]
    distance: list[int]
    diff: list[str]
    preference: list[str]


def text_pool(seed: int, size: int = POOL_SIZE) -> Pool:
    import random

    from apps.feedback.services import edit_cost
    from core.prompting import build_instruction
    from core.world.renderer import render
    from core.world.sources import SOURCE_NAMES, make_context
    from core.world.styles import random_style

    rng = random.Random(seed)
    columns: dict[str, list] = {k: [] for k in Pool.__dataclass_fields__}
    for i in range(size):
        context = make_context(SOURCE_NAMES[i % len(SOURCE_NAMES)], rng.randrange(2**31))
        shown = random_style(rng) | {"length": "medium"}
        wanted = shown if rng.random() < 0.05 else random_style(rng)  # 5 %: accepted as is
        output = render(context, "summarize", shown)
        edited = render(context, "summarize", wanted)
        cost = edit_cost(output, edited)
        changed = [f"{k}: {v}" for k, v in sorted(wanted.items()) if shown.get(k) != v]
        columns["prompt"].append(
            esc(build_instruction("summarize", context.text, None, context.source))
        )
        columns["source"].append(context.source)
        columns["output"].append(esc(output))
        columns["edited"].append(esc(edited))
        columns["distance"].append(cost.distance)
        columns["diff"].append(jsonb(cost.diff))
        columns["preference"].append(esc(", ".join(changed) or "keep it as it is"))
    return Pool(**columns)


def picks(pool_column: list, index: np.ndarray) -> list:
    return [pool_column[i] for i in index.tolist()]


# --- the fill -------------------------------------------------------------------------------


def fill(url: str, shape: Plan, progress: bool = True) -> Filler:
    """Fill the migrated database at ``url`` (Django is set up for it) with ``shape``."""
    import psycopg

    from bench._scale_fill_adapters import fill_adapters, fill_collab

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        filler = Filler(conn, progress)
        rng = np.random.default_rng(shape.seed)
        now = time.time()
        fill_people(filler, shape, rng, now)
        pool = text_pool(shape.seed)
        fill_feedback(filler, shape, rng, now, pool)
        fill_adapters(filler, shape, rng, now)
        fill_collab(filler, shape, rng, now)
        settle(filler)
    return filler


def settle(filler: Filler) -> None:
    """``VACUUM (ANALYZE)`` and a ``CHECKPOINT`` after the bulk load, as a database that has
    lived a while is: planner statistics, visibility map and hint bits in place, so the first
    measured reads neither rewrite every page they touch nor race autovacuum on a fresh table."""
    began = time.perf_counter()
    filler.conn.execute("VACUUM (ANALYZE)")
    filler.conn.execute("CHECKPOINT")
    filler.settle_s = round(time.perf_counter() - began, 1)


def fill_people(filler: Filler, shape: Plan, rng: np.random.Generator, now: float) -> None:
    from apps.accounts.models import ClientApp, User
    from apps.personas.models import PersonaProfile

    n, ids = shape.users, np.arange(1, shape.users + 1)
    joined = stamps(now - DAYS * 86400 - rng.random(n) * 30 * 86400)
    names = [
        f"app{a}-eu{i}" if a else f"person{i:05d}"
        for i, a in zip(ids, shape.app_of.tolist(), strict=True)
    ]
    apps = np.arange(1, shape.apps + 1)
    with filler.conn.transaction():  # users and apps name each other (deferred foreign keys)
        filler.copy(
            User,
            n,
            {
                "id": [str(i) for i in ids],
                "password": [f"!{i:040d}" for i in ids],
                "username": names,
                "email": [f"{u}@example.org" for u in names],
                "is_superuser": "f",
                "is_staff": "f",
                "is_active": "t",
                "first_name": "",
                "last_name": "",
                "date_joined": joined,
                "last_login": r"\N",
                "client_app_id": [str(a) if a else r"\N" for a in shape.app_of.tolist()],
                "external_id": [
                    f"eu{i}" if a else "" for i, a in zip(ids, shape.app_of.tolist(), strict=True)
                ],
            },
            rebuild=False,
        )
        filler.copy(
            ClientApp,
            shape.apps,
            {
                "id": [str(a) for a in apps],
                "name": [f"client app {a}" for a in apps],
                "key_digest": [hashlib.sha256(f"scale-app-{a}".encode()).hexdigest() for a in apps],
                "key_prefix": [f"apk_scale{a}" for a in apps],
                "created_at": joined[: shape.apps],
                "owner_id": [str(a) for a in apps],  # users 1..apps are people (see plan)
            },
            rebuild=False,
        )
    who = np.flatnonzero(rng.random(n) < 0.5) + 1
    m = len(who)
    made = stamps(now - rng.random(m) * DAYS * 86400)
    roles = ["teacher", "engineer", "nurse", "student", "editor", "lawyer", "chef"]
    filler.copy(
        PersonaProfile,
        m,
        {
            "id": [str(i) for i in range(1, m + 1)],
            "user_id": [str(u) for u in who],
            "text": [f"I work as a {roles[u % 7]} and write short notes for my team." for u in who],
            "attributes": [
                jsonb({"role": roles[u % 7], "tone": ("casual", "formal")[u % 2]}) for u in who
            ],
            "embedding": vectors(rng, m, 384),
            "embedding_model": EMBEDDING_MODEL,
            "embedding_dim": "384",
            "embedded_at": made,
            "created_at": made,
            "updated_at": made,
        },
    )


def fill_feedback(
    filler: Filler, shape: Plan, rng: np.random.Generator, now: float, pool: Pool
) -> None:
    from apps.feedback.models import Comparison, Edit, Interaction, Rating
    from apps.memory.models import MemoryEntry

    n = shape.interactions
    owner = np.repeat(np.arange(1, shape.users + 1), shape.counts)
    times = now - rng.random(n) * DAYS * 86400
    order = np.argsort(times)  # oldest first: ids grow with time
    owner, times = owner[order], times[order]
    ids = np.arange(1, n + 1)
    text = rng.integers(0, len(pool.prompt), n)
    created = stamps(times)
    filler.copy(
        Interaction,
        n,
        {
            "id": [str(i) for i in ids.tolist()],
            "user_id": [str(u) for u in owner.tolist()],
            "prompt": picks(pool.prompt, text),
            "source": picks(pool.source, text),
            "output": picks(pool.output, text),
            "model_id": "attune/style-lm",
            "messages": "[]",
            "preference_coefficients": "{}",
            "memory_entry_ids": "{}",
        }
        | {"created_at": created},
    )

    def later(mask: np.ndarray) -> list[str]:
        return stamps(np.minimum(now, times[mask] + rng.random(int(mask.sum())) * 3600))

    rated = rng.random(n) < 0.30
    k = int(rated.sum())
    stars = rng.random(k) < 0.5
    when = later(rated)
    filler.copy(
        Rating,
        k,
        {
            "id": [str(i) for i in range(1, k + 1)],
            "user_id": [str(u) for u in owner[rated]],
            "interaction_id": [str(i) for i in ids[rated]],
            "thumbs_up": [r"\N" if s else ("t", "f")[j % 2] for j, s in enumerate(stars.tolist())],
            "stars": [
                str(v) if s else r"\N"
                for v, s in zip(rng.integers(1, 6, k).tolist(), stars.tolist(), strict=True)
            ],
            "created_at": when,
            "updated_at": when,
        },
    )
    share = np.full(n, 0.10)
    heavy_count = int(shape.counts[shape.heaviest - 1])
    share[owner == shape.heaviest] = min(0.5, max(0.10, 11_000 / heavy_count))
    edited = rng.random(n) < share
    k = int(edited.sum())
    edit_text = text[edited]
    edit_when_s = np.minimum(now, times[edited] + rng.random(k) * 3600)
    edit_when = stamps(edit_when_s)
    filler.copy(
        Edit,
        k,
        {
            "id": [str(i) for i in range(1, k + 1)],
            "user_id": [str(u) for u in owner[edited]],
            "interaction_id": [str(i) for i in ids[edited]],
            "original": picks(pool.output, edit_text),
            "edited": picks(pool.edited, edit_text),
            "distance": [str(pool.distance[t]) for t in edit_text.tolist()],
            "diff": picks(pool.diff, edit_text),
            "created_at": edit_when,
        },
    )
    changed = np.array([pool.distance[t] > 0 for t in edit_text.tolist()], dtype=bool)
    m = int(changed.sum())
    learned = stamps(edit_when_s[changed] + 5)
    filler.copy(
        MemoryEntry,
        m,
        {
            "id": [str(i) for i in range(1, m + 1)],
            "user_id": [str(u) for u in owner[edited][changed]],
            "context_text": picks(pool.prompt, edit_text[changed]),
            "source": picks(pool.source, edit_text[changed]),
            "preference": picks(pool.preference, edit_text[changed]),
            "origin": "inferred",
            "edit_id": [str(i) for i in (np.flatnonzero(changed) + 1).tolist()],
            "embedding": vectors(rng, m, 384),
            "embedding_model": EMBEDDING_MODEL,
            "embedding_dim": "384",
            "embedded_at": learned,
            "created_at": learned,
            "updated_at": learned,
        },
    )
    compared = rng.random(n) < 0.05
    k = int(compared.sum())
    when = later(compared)
    filler.copy(
        Comparison,
        k,
        {
            "id": [str(i) for i in range(1, k + 1)],
            "user_id": [str(u) for u in owner[compared]],
            "prompt": picks(pool.prompt, text[compared]),
            "source": picks(pool.source, text[compared]),
            "response_a": picks(pool.output, text[compared]),
            "response_b": picks(pool.edited, text[compared]),
            "interaction_a_id": [str(i) for i in ids[compared]],
            "choice": [("a", "b", "tie")[c] for c in rng.choice(3, k, p=[0.4, 0.5, 0.1]).tolist()],
            "embedding": vectors(rng, k, 384),
            "embedding_model": EMBEDDING_MODEL,
            "embedding_dim": "384",
            "embedded_at": when,
            "created_at": when,
            "updated_at": when,
        },
    )
