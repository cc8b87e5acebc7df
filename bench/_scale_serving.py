"""The serving process's per-request preparation at size, for one (heavy) user, in process.

``python -m bench._scale_serving --user ID [--repeats 200]`` against ``DATABASE_URL`` (a filled
scratch database, e.g. the scale benchmark's) times, warm, what the serving process does before
it generates: ``plan_for`` (adapter, η, CIPHER memory, persona) for a realistic message with this
process's memory copy in use, as the engine calls it; its parts (the weights and persona without
memory, embedding the context, retrieval from the memory copy); and the copy's refresh after an
insert, an update and a delete of one of the user's memory entries (the entry is the bench's
own: inserted, changed, then deleted, so the user's memory ends as it began). It prints a table
and, as its last stdout line, ``{"rows": [{"name", "p50_ms", "p99_ms", "n"}]}``. The sentence
model runs on ``--torch-threads`` threads (1, as the serving engine sets for a small CPU model).

``--fill`` first makes such a user in a scratch database of its own (``attune_bench_serving``
on Attune's server; dropped afterwards unless ``--keep``): 50,000 interactions, 15,000 ratings,
5,000 edits, 10,000 embedded memory entries, an active adapter, η for 3 of the 7 active
preference vectors (CoPL's start applies to the other 4), a CoPL version with an embedding per
user, and a persona. Texts come from the offline world, so the style detectors find signals.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

DATABASE = "attune_bench_serving"


def setup(url: str | None = None) -> None:
    """Django against ``url`` (else ``DATABASE_URL``), with ``platform/`` on the path."""
    if url:
        os.environ["DATABASE_URL"] = url
    root = Path(__file__).resolve().parent.parent
    for folder in (root, root / "platform"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")
    import django

    django.setup()


def texts(n: int, seed: int) -> list[tuple[str, str, str]]:
    """``n`` (prompt, source, output) triples: world contexts rendered in random styles."""
    from core.world.renderer import render
    from core.world.sources import SOURCE_NAMES, make_context
    from core.world.styles import random_style

    rng = random.Random(seed)
    found = []
    for i in range(n):
        context = make_context(SOURCE_NAMES[i % len(SOURCE_NAMES)], seed * 100_000 + i)
        found.append(
            (context.text, context.source, render(context, "summarize", random_style(rng)))
        )
    return found


def unit_rows(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    rows = rng.standard_normal((n, dims)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def fill(interactions: int, ratings: int, edits: int, memory: int, seed: int) -> int:
    """One heavy user (and 200 others with a little CoPL); returns the heavy user's id."""
    from django.db import connection

    from apps.accounts.models import User
    from apps.adapters.models import AdapterVersion, PreferenceCoefficient, PreferenceVector
    from apps.collab.models import USER_EMBEDDING_DIMENSIONS, CollabModelVersion, UserEmbedding
    from apps.feedback.models import Edit, Interaction, Rating
    from apps.memory.models import MemoryEntry
    from apps.personas.models import PersonaProfile
    from core.dimensions import OFFLINE_DIMENSIONS

    rng = np.random.default_rng(seed)
    heavy = User.objects.create(username="heavy")
    others = User.objects.bulk_create([User(username=f"other-{i}") for i in range(200)])
    pool = texts(400, seed)
    picks = rng.integers(0, len(pool), interactions)
    rows = Interaction.objects.bulk_create(
        (
            Interaction(user=heavy, prompt=pool[p][0], source=pool[p][1], output=pool[p][2])
            for p in picks.tolist()
        ),
        batch_size=5000,
    )
    order = rng.permutation(len(rows))
    rated, edited = order[:ratings], order[ratings : ratings + edits]
    Rating.objects.bulk_create(
        (
            Rating(
                user=heavy,
                interaction=rows[i],
                **(
                    {"thumbs_up": bool(rng.random() < 0.6)}
                    if rng.random() < 0.7
                    else {"stars": int(rng.integers(1, 6))}
                ),
            )
            for i in rated.tolist()
        ),
        batch_size=5000,
    )
    Edit.objects.bulk_create(
        (
            Edit(
                user=heavy,
                interaction=rows[i],
                original=rows[i].output,
                edited=pool[(int(picks[i]) + 1) % len(pool)][2],
                distance=7,
            )
            for i in edited.tolist()
        ),
        batch_size=5000,
    )
    phrases = ["brief, bullet points", "casual, with emoji", "formal prose", "a greeting first"]
    vectors = unit_rows(rng, memory, 384)
    MemoryEntry.objects.bulk_create(
        (
            MemoryEntry(
                user=heavy,
                context_text=pool[i % len(pool)][0],
                source="news",
                preference=phrases[i % 4],
                embedding=vectors[i].tolist(),
                embedding_model="sentence-transformers/all-MiniLM-L6-v2",
                embedding_dim=384,
                origin="user" if i % 100 == 0 else "inferred",
            )
            for i in range(memory)
        ),
        batch_size=2000,
    )
    for dim in OFFLINE_DIMENSIONS:
        PreferenceVector.objects.create(
            name=dim.name,
            attribute=dim.attribute,
            positive=dim.positive,
            negative=dim.negative,
            base_model="m",
            base_fingerprint="f",
            rank=8,
            positive_path="p",
            negative_path="n",
        )
    for dim in OFFLINE_DIMENSIONS[:3]:
        PreferenceCoefficient.objects.create(user=heavy, vector_name=dim.name, eta=0.5)
    AdapterVersion.objects.create(
        user=heavy,
        version=1,
        status="active",
        method="dpo",
        base_model="m",
        base_fingerprint="f",
        rank=8,
        storage_path="sha256:0",
    )
    expert = {
        str(e): {d.name: round(float(rng.normal()), 3) for d in OFFLINE_DIMENSIONS}
        for e in range(4)
    }
    copl = CollabModelVersion.objects.create(version=1, status="active", expert_eta=expert)
    people = [heavy, *others]
    embedded = unit_rows(rng, len(people), USER_EMBEDDING_DIMENSIONS)
    UserEmbedding.objects.bulk_create(
        UserEmbedding(user=u, version=copl, vector=embedded[i].tolist(), expert=i % 4)
        for i, u in enumerate(people)
    )
    PersonaProfile.objects.create(user=heavy, text="I teach.", attributes={"role": "teacher"})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return heavy.pk


def timed(run: Callable[[int], object], repeats: int, warmup: int = 5) -> list[float]:
    """Wall milliseconds of ``run(i)`` for each repeat, after ``warmup`` untimed calls."""
    for i in range(warmup):
        run(i)
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        run(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


def refreshes(user_id: int, repeats: int) -> dict[str, list[float]]:
    """The copy's refresh (``memory_cache().get``) after an insert, an update and a delete of
    an entry of the user's (the bench's own, so the memory ends as it began)."""
    from apps.memory.cache import memory_cache
    from apps.memory.models import MemoryEntry

    cache, rng = memory_cache(), np.random.default_rng(7)
    found: dict[str, list[float]] = {"insert": [], "update": [], "delete": []}

    def refreshed(kind: str) -> None:
        started = time.perf_counter()
        cache.get(user_id)
        found[kind].append((time.perf_counter() - started) * 1000)

    cache.get(user_id)
    for i in range(repeats + 3):
        entry = MemoryEntry.objects.create(
            user_id=user_id,
            context_text="bench",
            preference="bench",
            origin="inferred",
            embedding=unit_rows(rng, 1, 384)[0].tolist(),
        )
        refreshed("insert")
        MemoryEntry.objects.filter(pk=entry.pk).update(preference=f"bench {i}")
        refreshed("update")
        MemoryEntry.objects.filter(pk=entry.pk).delete()
        refreshed("delete")
    return {kind: times[3:] for kind, times in found.items()}  # the first 3 warm up


def measure(user_id: int, repeats: int, threads: int = 1) -> list[dict[str, object]]:
    from apps.accounts.models import User
    from apps.feedback.services import flatten_messages
    from apps.generation.selectors import persona_prompt, plan_for, weights_for
    from apps.memory.models import MemoryEntry
    from apps.memory.selectors import embed_context, nearest

    user = User.objects.get(pk=user_id)
    if threads:
        import torch  # the sentence model's threads: the serving engine sets 1 on the CPU

        torch.set_num_threads(threads)
    asks = [
        [{"role": "user", "content": f"Summarize this for me.\n\n{prompt}"}]
        for prompt, _, _ in texts(64, 99)
    ]
    contexts = [flatten_messages(m) for m in asks]
    queries = [embed_context(c) for c in contexts[:16]]
    entries = MemoryEntry.objects.filter(user_id=user_id).count()
    print(f"user {user_id}: {entries:,} memory entries", file=sys.stderr)
    found = {
        "plan_for": timed(lambda i: plan_for(user, asks[i % len(asks)]), repeats),
        "weights and persona (no memory)": timed(
            lambda i: (weights_for(user), persona_prompt(user)), repeats
        ),
        "embed the context": timed(lambda i: embed_context(contexts[i % len(contexts)]), repeats),
        "memory retrieval (copy, k=5)": timed(
            lambda i: nearest(user_id, queries[i % len(queries)]), repeats
        ),
    }
    names = {"insert": "an insert", "update": "an update", "delete": "a delete"}
    for kind, times in refreshes(user_id, repeats).items():
        found[f"copy refresh after {names[kind]}"] = times
    rows = []
    print(f"\n{'heaviest user, warm, in process':<40}{'p50 ms':>9}{'p99 ms':>9}{'n':>6}")
    for name, times in found.items():
        p50, p99 = np.percentile(times, [50, 99])
        rows.append(
            {
                "name": name,
                "p50_ms": round(float(p50), 3),
                "p99_ms": round(float(p99), 3),
                "n": len(times),
            }
        )
        print(f"{name:<40}{p50:>9.2f}{p99:>9.2f}{len(times):>6}")
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._scale_serving", description=__doc__)
    parser.add_argument(
        "--user", type=int, help="the user to measure (with --fill: the filled one)"
    )
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--fill", action="store_true", help="fill a scratch database first")
    parser.add_argument("--keep", action="store_true", help="keep the --fill database")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="as the serving engine on a CPU (0: torch's)"
    )
    args = parser.parse_args(argv)
    if not args.fill:
        if args.user is None:
            parser.error("--user is required without --fill")
        setup()
        rows = measure(args.user, args.repeats, args.torch_threads)
    else:
        from bench._support import scratch_database

        with scratch_database(DATABASE, keep=args.keep) as url:
            setup(url)
            from django.core.management import call_command

            started = time.perf_counter()
            call_command("migrate", verbosity=0, interactive=False)
            user_id = fill(50_000, 15_000, 5_000, 10_000, args.seed)
            print(f"filled in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            rows = measure(user_id, args.repeats, args.torch_threads)
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
