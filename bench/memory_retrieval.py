"""Memory retrieval at scale: the real selector's latency for one user in a 1,000,000-row table.

``./attune bench memory_retrieval [--rows 1000000] [--user-rows 10000] [--queries 500] [--hnsw]``
creates the database ``attune_bench_memory`` on Attune's server (the embedded one unless
``DATABASE_URL``), migrates it and fills ``memory_memoryentry`` by binary COPY with random unit
vectors clustered around 50 topics, as context embeddings are, for every user alike (users write
about the same kinds of contexts): ``--user-rows`` of the measured user (1% of them written by the
user, at random contexts), the rest over 1,000 other users, interleaved as they would arrive. It
builds the indexes, runs VACUUM ANALYZE (as autovacuum would), then times
``apps.memory.selectors.nearest(user, query, k=5)`` (what generation calls: the serving
process's cached copy of the user's vectors, checked against their stamp each call) for queries
drawn like the user's contexts and prints p50/p99, CPU time per query (client and database
backend) and recall@5 against an exact search in numpy, then the first retrieval of a user (a
cold cache: their vectors loaded) and the first after one new entry (only that row read). For
comparison it times ``nearest_in_database`` (Hamming candidates from the binary codes, exact
re-rank), an exact scan of the user's full vectors and, with
``--hnsw`` (slow: it builds an HNSW index over every row), pgvector's HNSW index with
``hnsw.iterative_scan``. The database is dropped at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench._support import cpu_seconds, scratch_database

DATABASE = "attune_bench_memory"
DIM = 384
TOPICS = 50
OTHER_USERS = 1000
EPOCH_2000_US = 946_684_800_000_000  # PostgreSQL's timestamp epoch, in Unix microseconds
_PREFERENCE = b"brief, bullet points"
_CONTEXT = b"Summarize the following news item."
_MODEL = b"sentence-transformers/all-MiniLM-L6-v2"


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def topic_vectors(rng: np.random.Generator, centers: np.ndarray, n: int) -> np.ndarray:
    """Unit vectors around random topic centers (cosine about 0.6 within a topic)."""
    noise = rng.standard_normal((n, DIM)).astype(np.float32) * (0.8 / np.sqrt(DIM))
    return unit(centers[rng.integers(0, len(centers), n)] + noise)


def _row_dtype(origin: bytes) -> np.dtype:
    fields = [("n", ">i2")]
    for name, kind in (
        ("user_id", ">i8"),
        ("origin", f"S{len(origin)}"),
        ("preference", f"S{len(_PREFERENCE)}"),
        ("context_text", f"S{len(_CONTEXT)}"),
        ("source", "S4"),
        ("embedding_model", f"S{len(_MODEL)}"),
        ("embedding_dim", ">i2"),
        ("embedded_at", ">i8"),
        ("created_at", ">i8"),
        ("updated_at", ">i8"),
    ):
        fields += [(f"{name}_len", ">i4"), (name, kind)]
    fields += [("embedding_len", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f4", DIM)]
    return np.dtype(fields)


COLUMNS = (
    "user_id, origin, preference, context_text, source, embedding_model, embedding_dim, "
    "embedded_at, created_at, updated_at, embedding"
)


def copy_rows(cursor: object, user_ids: np.ndarray, vectors: np.ndarray, origin: bytes) -> None:
    """Append rows to memory_memoryentry with one binary COPY."""
    dtype = _row_dtype(origin)
    rows = np.zeros(len(user_ids), dtype=dtype)
    rows["n"] = 11
    now = int(time.time() * 1e6) - EPOCH_2000_US
    values = {
        "user_id": user_ids, "origin": origin, "preference": _PREFERENCE,
        "context_text": _CONTEXT, "source": b"news", "embedding_model": _MODEL,
        "embedding_dim": DIM, "embedded_at": now, "created_at": now, "updated_at": now,
    }  # fmt: skip
    for name, value in values.items():
        rows[f"{name}_len"] = dtype[name].itemsize
        rows[name] = value
    rows["embedding_len"], rows["dim"], rows["vec"] = 4 + 4 * DIM, DIM, vectors
    with cursor.copy(  # type: ignore[attr-defined]
        f"COPY memory_memoryentry ({COLUMNS}) FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
        for start in range(0, len(rows), 50_000):
            copy.write(rows[start : start + 50_000].tobytes())
        copy.write(struct.pack(">h", -1))


def fill(rows: int, user_rows: int, seed: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Users and memory rows; returns the measured user's id, entry ids and vectors."""
    from django.db import connection

    from apps.accounts.models import User
    from apps.memory.models import MemoryEntry

    users = User.objects.bulk_create([User(username=f"bench-{i}") for i in range(OTHER_USERS + 1)])
    target, others = users[0].pk, np.array([u.pk for u in users[1:]])
    rng = np.random.default_rng(seed)
    centers = unit(rng.standard_normal((TOPICS, DIM)))
    written = user_rows // 100  # the user's own preferences: random contexts, never in charge
    mine = np.concatenate(
        [
            topic_vectors(rng, centers, user_rows - written),
            unit(rng.standard_normal((written, DIM))),
        ]
    )
    every = max(1, rows // user_rows)
    with connection.schema_editor() as editor:
        for index in MemoryEntry._meta.indexes:
            editor.remove_index(MemoryEntry, index)
    with connection.cursor() as cursor:
        done = 0
        for start in range(0, rows - written, 200_000):
            n = min(200_000, rows - written - start)
            position = np.arange(start, start + n)
            is_mine = (position % every == 0) & (position // every < user_rows - written)
            user_ids = np.where(is_mine, target, others[position % len(others)])
            vectors = topic_vectors(rng, centers, n)
            vectors[is_mine] = mine[done : done + int(is_mine.sum())]
            done += int(is_mine.sum())
            copy_rows(cursor, user_ids, vectors, b"inferred")
        copy_rows(cursor, np.full(written, target), mine[done:], b"user")
    with connection.schema_editor() as editor:
        for index in MemoryEntry._meta.indexes:
            editor.add_index(MemoryEntry, index)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE memory_memoryentry")
    ids = np.array(
        MemoryEntry.objects.filter(user_id=target).order_by("id").values_list("id", flat=True)
    )
    return target, ids, mine


@dataclass(frozen=True)
class Timing:
    """Latency percentiles (ms), CPU time per query (ms; None when unmeasurable), recall@5."""

    p50: float
    p99: float
    cpu: float | None
    recall: float


def _server_cpu_seconds() -> float | None:
    """CPU time the database backend of this connection has used (a server on this machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return cpu_seconds([pid]).get(pid)


def time_queries(
    run: Callable[[np.ndarray], list[int]], queries: np.ndarray, truth: list[set[int]]
) -> Timing:
    """Time ``run`` over the queries (after a warm-up): wall-clock latency, and the CPU time of
    client and database backend together, which is what the latency is on an idle machine."""
    for query in queries[:20]:
        run(query)
    times, recalls = [], []
    server, client = _server_cpu_seconds(), time.process_time()
    for query, expected in zip(queries, truth, strict=True):
        started = time.perf_counter()
        found = run(query)
        times.append((time.perf_counter() - started) * 1000)
        recalls.append(len(set(found) & expected) / len(expected))
    server_after, client_after = _server_cpu_seconds(), time.process_time()
    cpu = None
    if server is not None and server_after is not None:
        cpu = (server_after - server + client_after - client) * 1000 / len(queries)
    p50, p99 = np.percentile(times, [50, 99])
    return Timing(float(p50), float(p99), cpu, float(np.mean(recalls)))


def _sql_runner(sql: str, user_id: int, settings: tuple[str, ...] = ()) -> Callable:
    from django.db import connection, transaction

    def run(query: np.ndarray) -> list[int]:
        vector = "[" + ",".join(f"{x:.8g}" for x in query) + "]"
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in settings:
                cursor.execute(statement)
            cursor.execute(sql, {"q": vector, "u": user_id})
            return [row[0] for row in cursor.fetchall()]

    return run


EXACT = (
    "SELECT id FROM memory_memoryentry WHERE user_id = %(u)s "
    "ORDER BY embedding <=> %(q)s::vector LIMIT 5"
)
ITERATIVE = "SET LOCAL hnsw.iterative_scan = relaxed_order"
HNSW = (
    "WITH c AS MATERIALIZED (SELECT id, embedding <=> %(q)s::vector AS d FROM memory_memoryentry "
    "WHERE user_id = %(u)s ORDER BY d LIMIT 5) SELECT id FROM c ORDER BY d"
)


def measure(target: int, ids: np.ndarray, mine: np.ndarray, args: argparse.Namespace) -> None:
    from django.db import connection

    from apps.memory.cache import memory_cache
    from apps.memory.models import MemoryEntry
    from apps.memory.selectors import nearest, nearest_in_database

    rng = np.random.default_rng(args.seed + 1)
    centers = unit(np.random.default_rng(args.seed).standard_normal((TOPICS, DIM)))
    queries = topic_vectors(rng, centers, args.queries)
    truth = [set(ids[np.argsort(1 - mine @ q, kind="stable")[:5]].tolist()) for q in queries]

    def selector(query: np.ndarray) -> list[int]:
        return [n.entry_id for n in nearest(target, query.tolist(), k=5)]

    def in_database(query: np.ndarray) -> list[int]:
        return [n.entry_id for n in nearest_in_database(target, query.tolist(), k=5)]

    def show(runs: dict[str, Callable]) -> None:
        for name, run in runs.items():
            t = time_queries(run, queries, truth)
            cpu = f"{t.cpu:>8.2f}" if t.cpu is not None else f"{'-':>8}"
            print(f"{name:<48}{t.p50:>8.2f}{t.p99:>8.2f}{cpu}{t.recall:>10.3f}", flush=True)

    columns = f"{'p50 ms':>8}{'p99 ms':>8}{'CPU ms':>8}{'recall@5':>10}"
    print(f"\n{'k=5 nearest of the user':<48}{columns}")
    show(
        {
            "selector at generation (process cache, exact)": selector,
            "in the database (Hamming candidates, re-rank)": in_database,
            "exact scan of the user's full vectors": _sql_runner(EXACT, target),
        }
    )
    cold = []
    for query in queries[:10]:
        memory_cache().clear()
        started = time.perf_counter()
        selector(query)
        cold.append((time.perf_counter() - started) * 1000)
    print(
        f"first retrieval of a user (loads their {len(mine):,} vectors): p50 "
        f"{np.percentile(cold, 50):.1f} ms, max {max(cold):.1f} ms"
    )
    after_edit = []
    for query in queries[:10]:  # an edit teaches one entry; the next generation retrieves
        MemoryEntry.objects.create(
            user_id=target, preference="brief", origin=MemoryEntry.Origin.INFERRED,
            context_text="c", embedding=query.tolist(),
        )  # fmt: skip
        started = time.perf_counter()
        selector(query)
        after_edit.append((time.perf_counter() - started) * 1000)
    print(
        f"first retrieval after one new entry (reads that row): p50 "
        f"{np.percentile(after_edit, 50):.1f} ms, max {max(after_edit):.1f} ms"
    )
    if not args.hnsw:
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '4GB'")
        cursor.execute(
            "CREATE INDEX mem_bench_hnsw ON memory_memoryentry USING hnsw "
            "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        cursor.execute("VACUUM ANALYZE memory_memoryentry")
    print(f"(HNSW index built in {time.perf_counter() - started:.0f} s)")
    hnsw = {
        f"HNSW, iterative scan, ef_search {ef}": _sql_runner(
            HNSW, target, (f"SET LOCAL hnsw.ef_search = {ef}", ITERATIVE)
        )
        for ef in (40, 200)
    }
    show({**hnsw, "exact SQL with an HNSW index present": _sql_runner(EXACT, target)})


def main(argv: list[str]) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(prog="./attune bench memory_retrieval", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--user-rows", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hnsw", action="store_true", help="also build and time an HNSW index")
    parser.add_argument("--keep", action="store_true", help="keep the database for inspection")
    args = parser.parse_args(argv)

    with scratch_database(DATABASE, keep=args.keep) as url:
        os.environ["DATABASE_URL"] = url
        import django
        from django.core.management import call_command

        django.setup()
        started = time.perf_counter()
        call_command("migrate", verbosity=0, interactive=False)
        target, ids, mine = fill(args.rows, args.user_rows, args.seed)
        print(
            f"{args.rows:,} memory rows ({len(ids):,} of the measured user, the rest over "
            f"{OTHER_USERS:,} users) ready in {time.perf_counter() - started:.0f} s"
        )
        measure(target, ids, mine, args)
        print(f"\ntarget: selector p50 under 5 ms; load average now {os.getloadavg()[0]:.1f}")
    return 0
