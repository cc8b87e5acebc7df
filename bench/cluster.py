"""Attune on several machines: fits per hour with 2 gpu-queue workers vs 1; cold adapter loads.

    ./attune bench cluster [--quick] [--users 8] [--edits 16] [--layouts 1x2,1x1,2x1] [--repeats 2]
                           [--fit-store local|s3] [--loads 50] [--parts fits,loads] [--json PATH]

What it does, in order:

1. **fits** (``--parts fits``): builds the built-in style model once under this process's var dir
   (``ATTUNE_VAR_DIR``; about 5 min on 2 cores the first time), puts it in a fresh artifact store
   shared by every worker (a local folder, or ``--fit-store s3``: a moto S3 server on 127.0.0.1)
   and gives each worker ``ATTUNE_BASE_MODEL=<its ref>``, so every node loads identical weights.
   A scratch database ``attune_bench_cluster_<pid>`` (beside Attune's own, as in
   ``feedback_writes``) gets ``--users`` users per layout, each with ``--edits`` edits of the
   offline world's outputs (default style → "brief, bullet points": enough pairs for a DPO fit).
   For each layout ``WxT`` it starts W ``celery -A attune worker -Q gpu -c 1`` processes, each a
   node of its own (own var dir and node cache, ``OMP_NUM_THREADS=T``), on Redis (``--broker``,
   a database of its own: no other worker may listen there), warms each with one fit (imports,
   the base model fetched into its cache), then requests the users' fits the way the web does
   (``apps.adapters.services.request_fit``: a FitJob row, then the task through Redis) and waits
   until every job has finished. Wall time runs from the first request to the last job's end;
   fits/hour = fits ÷ wall time. Beside it: each fit's own seconds (started → finished on its
   worker), the CPU seconds the workers used per fit, and how many cores everything else kept
   busy meanwhile on average (PostgreSQL, Redis, this process, and any other job on the machine:
   a second worker on a 2-core machine competes with them, one worker leaves them a core).
   Each layout runs ``--repeats`` times, interleaved with the others; the ratios compare each
   layout's best run (the least disturbed by other jobs on a shared machine): ``2x1`` vs ``1x1``
   is what a second node of the same size adds (target ≥ 1.8×); ``2x1`` vs ``1x2`` spends the
   same 2 cores as two processes or as two threads of one.
2. **loads** (``--parts loads``): what a serving replica does on a cache miss. ``--loads`` fresh
   rank-8 LoRAs on every linear layer of a model shaped like the style model (random weights:
   only the shapes matter), written as safetensors with Attune's manifest and put in a store
   (a local folder; and a moto S3 server this process starts on 127.0.0.1); then a replica with an
   empty node cache runs ``WeightsProvider.load`` (fetch from the store and check every file's
   checksum, verify the adapter and its base fingerprint, read it, move it to the device) once per
   ref: p50/p99 of the whole load and of the fetch within it, and p50 of the writer's ``put``.
   The local store's files were just written, so the OS page cache holds them; moto runs on the
   same cores, so its request handling counts in the S3 figures.

Everything runs on this machine's cores; the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench._cluster_loads import measure_loads, store_location
from bench._cluster_report import (
    FitRun,
    Layout,
    LoadFigures,
    as_json,
    fits_table,
    loads_table,
    machine_busy_seconds,
    machine_line,
    tree_cpu_seconds,
)  # fmt: skip

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BROKER = "redis://127.0.0.1:6379/7"  # not the tests' (8–15) nor the example's (0)
USER_STYLE = {"length": "short", "format": "bullets"}
FINISHED = ("succeeded", "failed")


def django_setup(database_url: str, broker: str) -> None:
    """This process as the web node: Django on the bench database, Celery on ``broker``."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["CELERY_BROKER_URL"] = broker
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def seed_users(prefix: str, count: int, edits: int, offset: int) -> list[Any]:
    """``count`` users, each with ``edits`` interactions (the world's default style) edited into
    "brief, bullet points" (different contexts for every user)."""
    from apps.accounts.models import User
    from apps.feedback.models import Edit, Interaction
    from core.prompting import build_instruction
    from core.text import word_diff, word_levenshtein
    from core.world.renderer import TASKS, render
    from core.world.sources import SOURCE_NAMES, make_context
    from core.world.styles import default_style

    wanted = {**default_style(), **USER_STYLE}
    users = []
    for n in range(count):
        user = User.objects.create_user(username=f"{prefix}{n}")
        rows = []
        for j in range(edits):
            source = SOURCE_NAMES[j % len(SOURCE_NAMES)]
            ctx, task = make_context(source, 10_000 * (offset + n) + j), TASKS[j % len(TASKS)]
            rows.append((build_instruction(task, ctx.text, source=source), source,
                         render(ctx, task), render(ctx, task, wanted)))  # fmt: skip
        interactions = Interaction.objects.bulk_create(
            Interaction(user=user, prompt=p, source=s, output=o, model_id="attune/style-lm")
            for p, s, o, _ in rows
        )
        Edit.objects.bulk_create(
            Edit(user=user, interaction=i, original=o, edited=e,
                 distance=word_levenshtein(o, e), diff=[op.as_dict() for op in word_diff(o, e)])
            for i, (_, _, o, e) in zip(interactions, rows, strict=True)
        )  # fmt: skip
        users.append(user)
    return users


@contextlib.contextmanager
def gpu_workers(
    names: list[str], var: Path, threads: int, env: dict[str, str]
) -> Iterator[list[subprocess.Popen]]:
    """One ``celery -A attune worker -Q gpu -c 1`` per name, each with its own var dir."""
    from attune.cli import python_env

    procs = []
    try:
        for name in names:
            node = var / name.split("@")[0]
            node.mkdir(parents=True, exist_ok=True)
            command = [
                str(Path(sys.executable).parent / "celery"), "-A", "attune", "worker", "-Q", "gpu",
                "-c", "1", "-n", name, "--loglevel", "WARNING",
            ]  # fmt: skip
            worker_env = python_env(**env, ATTUNE_VAR_DIR=str(node), OMP_NUM_THREADS=str(threads),
                                    MKL_NUM_THREADS=str(threads))  # fmt: skip
            for own in ("ATTUNE_ARTIFACT_CACHE_DIR", "ATTUNE_ADAPTER_ROOT"):
                worker_env.pop(own, None)  # the node's own, under its var dir
            with (node / "worker.log").open("ab") as log:
                proc = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=worker_env,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            procs.append(proc)
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with contextlib.suppress(ProcessLookupError):  # the pool child, if it outlived it
                os.killpg(proc.pid, signal.SIGKILL)


def wait_for_workers(names: list[str], procs: list[subprocess.Popen], timeout: float) -> None:
    from attune.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            raise RuntimeError("a gpu worker exited while starting (see worker.log in its var)")
        replies = app.control.ping(destination=names, timeout=1.0)
        if set(names) <= {name for reply in replies for name in reply}:
            return
    raise RuntimeError(f"the gpu workers did not answer within {timeout:.0f} s")


def check_broker_is_ours(broker: str) -> None:
    """Refuse a broker where another worker listens (it would take our jobs); empty its queues."""
    from attune.celery import app

    others = [name for reply in app.control.ping(timeout=1.5) for name in reply]
    if others:
        raise RuntimeError(f"workers already listen on {broker}: {others}; choose --broker")
    app.control.purge()


def run_fits(users: list[Any], timeout: float) -> tuple[float, list[int]]:
    """Request a fit of each user (the web's path: a FitJob, then the task through the broker)
    and wait until all have finished; (wall seconds, job ids)."""
    from apps.adapters.models import FitJob
    from apps.adapters.services import request_fit

    started = time.perf_counter()
    ids = [request_fit(user)[0].pk for user in users]
    deadline = time.monotonic() + timeout
    while FitJob.objects.filter(pk__in=ids).exclude(status__in=FINISHED).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"fits still running after {timeout:.0f} s")
        time.sleep(0.1)
    return time.perf_counter() - started, ids


def measure_layout(
    layout: Layout, users: list[Any], warm: list[Any], nodes: Path, env: dict[str, str]
) -> FitRun:
    """Start the layout's workers as fresh nodes under ``nodes``, warm each, time the fits."""
    from django_celery_results.models import TaskResult

    from apps.adapters.models import FitJob

    host = socket.gethostname()
    names = [f"bench-{os.getpid()}-{nodes.name}-{i}@{host}" for i in range(layout.workers)]
    with gpu_workers(names, nodes, layout.threads, env) as procs:
        wait_for_workers(names, procs, timeout=180)
        run_fits(warm, timeout=600)  # one per worker: each holds one job at a time (prefetch 1)
        digest = env["ATTUNE_BASE_MODEL"].removeprefix("sha256:")  # fetched by each warm node
        warmed = sum((nodes / n.split("@")[0] / "cache" / "artifacts" / digest).is_dir()
                     for n in names)  # fmt: skip
        roots = [proc.pid for proc in procs]
        before = machine_busy_seconds(), tree_cpu_seconds(roots)
        seconds, ids = run_fits(users, timeout=300 + 120 * len(users))
        busy, ours = machine_busy_seconds() - before[0], tree_cpu_seconds(roots) - before[1]
    jobs = list(FitJob.objects.filter(pk__in=ids))
    workers = TaskResult.objects.filter(task_id__in=[j.celery_task_id for j in jobs])
    per_worker: dict[str, int] = {}
    for worker in workers.values_list("worker", flat=True):
        per_worker[worker or "?"] = per_worker.get(worker or "?", 0) + 1
    return FitRun(
        layout=layout,
        fits=len(jobs),
        seconds=seconds,
        fit_seconds=[
            (j.finished_at - j.started_at).total_seconds()
            for j in jobs
            if j.started_at and j.finished_at
        ],
        per_worker=per_worker,
        failed=[f"job {j.pk}: {j.error}" for j in jobs if j.status == FitJob.Status.FAILED],
        load=os.getloadavg(),
        warmed=warmed,
        cpu_seconds=ours,
        other_cores=max(0.0, busy - ours) / seconds,
    )


def measure_fits(args: argparse.Namespace, layouts: list[Layout], work: Path) -> list[FitRun]:
    from bench._support import scratch_database
    from core.artifacts import open_store
    from core.config import var_dir
    from workers.modeling.style_lm import ensure_style_lm

    started = time.perf_counter()
    model = ensure_style_lm(var=var_dir())  # built once here; the workers fetch it by ref
    print(f"style model: {model} ({time.perf_counter() - started:.0f} s to build or find)")
    runs = []
    with (
        store_location(args.fit_store, work / "store") as (location, store_env),
        scratch_database(f"attune_bench_cluster_{os.getpid()}") as url,
    ):
        base_ref = open_store(location, work / "bench-node" / "cache", 2**40).put(model)
        print(f"artifact store: {location}; base model {base_ref[:19]}…", flush=True)
        django_setup(url, args.broker)
        check_broker_is_ours(args.broker)
        env = {
            **store_env,
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": args.broker,
            "ATTUNE_ARTIFACT_STORE": location,
            "ATTUNE_BASE_MODEL": base_ref,
            "DJANGO_SECRET_KEY": f"bench-cluster-{uuid.uuid4().hex}",
            "OMP_WAIT_POLICY": "PASSIVE",
            "TOKENIZERS_PARALLELISM": "false",
        }
        order = [(r, layout) for r in range(args.repeats) for layout in layouts]  # interleaved
        for index, (repeat, layout) in enumerate(order):
            offset, tag = index * (args.users + 8), f"{layout.key}-{repeat}-"
            users = seed_users(f"fit{tag}", args.users, args.edits, offset)
            warm = seed_users(f"warm{tag}", layout.workers, args.edits, offset + args.users)
            print(f"  {layout} (run {repeat + 1} of {args.repeats}): {args.users} fits …",
                  flush=True)  # fmt: skip
            nodes = work / f"nodes-{layout.key}-{repeat}"
            runs.append(measure_layout(layout, users, warm, nodes, env))
            print("  " + fits_table(runs[-1:])[1], flush=True)
        from django.db import connections

        connections.close_all()
    return runs


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="./attune bench cluster", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--quick", action="store_true",
                   help="a short run: 4 users, layouts 1x1,2x1, 10 loads")  # fmt: skip
    p.add_argument("--parts", default="fits,loads", help="comma-separated: fits,loads")
    p.add_argument("--users", type=int, help="fits per layout (default 8; --quick 4)")
    p.add_argument("--edits", type=int, default=16, help="edits (preference pairs) per user")
    p.add_argument("--layouts", help="WORKERSxTHREADS, comma-separated (default 1x2,1x1,2x1)")
    p.add_argument("--repeats", type=int,
                   help="runs of each layout, interleaved (default 2; --quick 1)")  # fmt: skip
    p.add_argument("--fit-store", choices=("local", "s3"), default="local",
                   help="the store the workers share: a folder, or a moto S3 server")  # fmt: skip
    p.add_argument("--broker", default=DEFAULT_BROKER, help="Redis URL no other worker uses")
    p.add_argument("--loads", type=int, help="cold loads per store (default 50; --quick 10)")
    p.add_argument("--stores", default="local,s3", help="comma-separated: local,s3")
    p.add_argument("--rank", type=int, default=8, help="rank of the loaded adapters")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    args.users = args.users or (4 if args.quick else 8)
    args.repeats = args.repeats or (1 if args.quick else 2)
    args.loads = args.loads or (10 if args.quick else 50)
    args.layouts = args.layouts or ("1x1,2x1" if args.quick else "1x2,1x1,2x1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    parts = {p for p in args.parts.split(",") if p}
    stores = [s for s in args.stores.split(",") if s]
    if parts - {"fits", "loads"} or set(stores) - {"local", "s3"}:
        print("--parts takes fits,loads and --stores local,s3", file=sys.stderr)
        return 2
    try:
        layouts = [Layout.parse(text) for text in args.layouts.split(",") if text]
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    command = shlex.join(["./attune", "bench", "cluster", *argv])
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from core.config import var_dir

    print(f"cluster: {command}")
    print("  " + machine_line(), flush=True)
    runs: list[FitRun] = []
    loads: list[LoadFigures] = []
    var_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=var_dir(), prefix="bench-cluster-") as tmp:
        work = Path(tmp)
        if "fits" in parts:
            print(f"\n1. fits per hour: {args.users} users × {args.edits} edits (DPO), through "
                  f"Redis ({args.broker}), store: {args.fit_store}", flush=True)  # fmt: skip
            runs = measure_fits(args, layouts, work)
        if "loads" in parts:
            print(f"\n2. cold adapter loads: {args.loads} fresh rank-{args.rank} LoRAs per store, "
                  "empty node cache", flush=True)  # fmt: skip
            labels = {"local": "local folder", "s3": "S3 (moto, 127.0.0.1)"}
            for kind in stores:
                loads.append(measure_loads(kind, labels[kind], args.loads, args.rank, work))
    print(f"\ncluster figures ({command}); load average now: "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()))  # fmt: skip
    if runs:
        print("\n".join(fits_table(runs)))
    if loads:
        size = loads[0].adapter_bytes / 1024
        print(f"cold adapter load (fetch + checksums + verify + read), {size:.0f} KiB per adapter:")
        print("\n".join(loads_table(loads)))
    if args.json:
        args.json.write_text(json.dumps(as_json(runs, loads, command), indent=2) + "\n")
    return 1 if any(run.failed for run in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
