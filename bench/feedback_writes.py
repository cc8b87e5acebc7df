"""Feedback writes over HTTP: rating and edit writes per second, p50/p99 latency (real gunicorn).

    ./attune bench feedback_writes [--clients 8] [--seconds 15] [--workers 2] [--threads 4]

What it does, in order:
1. creates a fresh database ``attune_bench_<pid>`` on the same PostgreSQL server as Attune's own
   (the embedded one unless ``DATABASE_URL``), migrates it, and adds one user per client, each
   with a personal token and ``--interactions`` interactions (about 60-word outputs);
2. starts gunicorn (``attune.wsgi``, no access log) on a free local port against that database;
3. for each phase, ``--clients`` threads each hold a keep-alive HTTP connection and send requests
   back to back as their own user for ``--seconds`` after a warm-up: ``ratings`` posts
   ``{"interaction", "stars"|"thumbs"}`` to ``/api/ratings`` (a first rating or a replacement),
   ``edits`` posts an edited output (three words changed) to ``/api/edits``, which also queues
   the memory task for the edit on the Celery broker (``CELERY_BROKER_URL``, else the bench
   database); no worker runs, so the figures are the web side's;
4. prints, per phase, successful writes per second and latency percentiles (client-side, from
   sending the request to reading the whole answer), and the CPU time one write cost the web
   workers, their database sessions and the load generator (from /proc, so it holds even when
   other jobs share the machine; cores ÷ that sum is the ceiling of an otherwise idle machine);
   then stops the server and drops the database. Everything runs on the same machine and cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench._support import cpu_seconds, percentile, proc_stat, scratch_database

ROOT = Path(__file__).resolve().parents[1]
WORDS = [
    "council", "tram", "line", "city", "budget", "vote", "school", "park", "river", "bridge",
    "market", "festival", "plan", "mayor", "street", "museum", "library", "harbour", "station",
]  # fmt: skip


@dataclass
class PhaseResult:
    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used while measuring

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: int) -> float:
        return percentile(self.latencies, q) * 1000


@dataclass(frozen=True)
class Client:
    token: str
    interactions: list[tuple[int, str]]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="./attune bench feedback_writes", description=__doc__)
    p.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (threads)")
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per phase")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds per phase")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=4, help="threads per worker (>1: gthread)")
    p.add_argument("--interactions", type=int, default=200, help="interactions per user")
    p.add_argument("--phases", default="ratings,edits", help="comma-separated: ratings,edits")
    return p.parse_args(argv)


def seed(url: str, clients: int, per_user: int) -> list[Client]:
    """Migrate the bench database; one user per client with a token and interactions."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from apps.accounts.models import User
    from apps.accounts.services import issue_personal_token
    from apps.feedback.models import Interaction

    call_command("migrate", interactive=False, verbosity=0)
    from attune.celery import app

    with app.connection_for_write() as broker:  # declared now, not by racing gunicorn workers
        for queue in app.amqp.queues.values():  # (the database broker creates its tables here)
            queue(broker.default_channel).declare()
    rng = random.Random(0)
    result = []
    for n in range(clients):
        user = User.objects.create_user(username=f"bench{n}")
        token = issue_personal_token(user, "bench").key
        rows = Interaction.objects.bulk_create(
            Interaction(
                user=user,
                prompt=f"Summarize story {i} for the newsletter.",
                source=rng.choice(["news", "email", "forum"]),
                output=" ".join(rng.choices(WORDS, k=60)),
            )
            for i in range(per_user)
        )
        result.append(Client(token, [(row.pk, row.output) for row in rows]))
    connections.close_all()
    return result


# --- server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(url: str, port: int, workers: int, threads: int) -> Iterator[subprocess.Popen]:
    from attune.cli import python_env

    command = [
        str(Path(sys.executable).parent / "gunicorn"), "attune.wsgi",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
        "--worker-class", "gthread" if threads > 1 else "sync", "--log-level", "warning",
    ]  # fmt: skip
    env = python_env(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="attune.settings")
    proc = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_until_up(port: int, token: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/me", headers={"Authorization": f"Bearer {token}"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the benchmark server did not come up")


# --- CPU accounting -------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuMeter:
    """CPU used so far by the web server's processes, their database sessions and this process."""

    server_pid: int
    database_url: str

    def read(self) -> dict[str, dict[int, float]]:
        import psycopg

        procs = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
        web = [pid for pid in procs if (f := proc_stat(pid)) and int(f[1]) == self.server_pid]
        with psycopg.connect(self.database_url) as conn:
            backends = [row[0] for row in conn.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )]  # fmt: skip
        return {
            "web": cpu_seconds([self.server_pid, *web]),
            "database sessions": cpu_seconds(backends),
            "load generator": {os.getpid(): time.process_time()},
        }


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict:
    return {
        part: sum(t - before[part].get(pid, 0.0) for pid, t in after[part].items())
        for part in after
    }


# --- load -----------------------------------------------------------------------------------


def rating_body(client: Client, rng: random.Random) -> dict:
    interaction_id, _ = rng.choice(client.interactions)
    if rng.random() < 0.5:
        return {"interaction": interaction_id, "stars": rng.randint(1, 5)}
    return {"interaction": interaction_id, "thumbs": rng.choice(["up", "down"])}


def edit_body(client: Client, rng: random.Random) -> dict:
    interaction_id, output = rng.choice(client.interactions)
    words = output.split()
    for i in rng.sample(range(len(words)), 3):
        words[i] = rng.choice(WORDS).upper()
    return {"interaction": interaction_id, "edited": " ".join(words)}


PHASES: dict[str, tuple[str, Callable[[Client, random.Random], dict], frozenset[int]]] = {
    "ratings": ("/api/ratings", rating_body, frozenset({200, 201})),
    "edits": ("/api/edits", edit_body, frozenset({201})),
}


def drive(
    port: int, clients: list[Client], phase: str, warmup: float, seconds: float, meter: CpuMeter
) -> PhaseResult:
    """Every client sends writes back to back; latencies (and CPU) after the warm-up count."""
    path, make_body, ok = PHASES[phase]
    result = PhaseResult(phase, seconds)
    lock = threading.Lock()
    start = time.monotonic() + 0.5
    measure_from, stop_at = start + warmup, start + warmup + seconds

    def run(index: int, client: Client) -> None:
        rng = random.Random(index)
        headers = {"Authorization": f"Bearer {client.token}", "Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        errors: dict[str, int] = {}
        time.sleep(max(0.0, start - time.monotonic()))
        while (now := time.monotonic()) < stop_at:
            body = json.dumps(make_body(client, rng))
            began = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                outcome = None if response.status in ok else f"HTTP {response.status}"
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                outcome = type(err).__name__
            elapsed = time.perf_counter() - began
            if now >= measure_from:
                if outcome is None:
                    mine.append(elapsed)
                else:
                    errors[outcome] = errors.get(outcome, 0) + 1
        conn.close()
        with lock:
            result.latencies.extend(mine)
            for key, count in errors.items():
                result.errors[key] = result.errors.get(key, 0) + count

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, measure_from - time.monotonic()))
    before = meter.read()
    for thread in threads:
        thread.join()
    result.cpu = cpu_used(before, meter.read())
    return result


# --- report ---------------------------------------------------------------------------------


def machine_facts(url: str) -> list[str]:
    import psycopg

    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                 if ln.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    with psycopg.connect(url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"machine: {os.cpu_count()} CPU cores ({cpu}), {platform.system()} {platform.release()}",
        f"python {platform.python_version()}, PostgreSQL {pg}; load average now: {load}",
    ]


def report(result: PhaseResult) -> str:
    if not result.latencies:
        return f"{result.name:<8} no successful writes; errors: {result.errors}"
    errors = sum(result.errors.values())
    writes = len(result.latencies)
    per_write = {part: seconds * 1000 / writes for part, seconds in result.cpu.items()}
    ceiling = (os.cpu_count() or 1) * 1000 / sum(per_write.values())
    return (
        f"{result.name:<8} {result.rate:7.1f} writes/s   p50 {result.percentile(50):6.1f} ms   "
        f"p99 {result.percentile(99):6.1f} ms   max {max(result.latencies) * 1000:6.1f} ms   "
        f"({writes} writes, {errors} errors{f': {result.errors}' if errors else ''})\n"
        f"{'':<9}CPU per write: "
        + ", ".join(f"{part} {ms:.2f} ms" for part, ms in per_write.items())
        + f" (all cores busy with nothing else: at most ~{ceiling:.0f} writes/s)"
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    phases = [p for p in args.phases.split(",") if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        print(f"unknown phase(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    failed = False
    with scratch_database(f"attune_bench_{os.getpid()}") as url:
        clients = seed(url, args.clients, args.interactions)
        port = free_port()
        with gunicorn(url, port, args.workers, args.threads) as server:
            wait_until_up(port, clients[0].token)
            meter = CpuMeter(server.pid, url)
            kind = f"gthread, {args.threads} threads" if args.threads > 1 else "sync"
            print(f"feedback_writes: gunicorn {args.workers} workers ({kind}), {args.clients} "
                  f"keep-alive clients, {args.seconds:g} s per phase after {args.warmup:g} s "
                  "warm-up")  # fmt: skip
            for line in machine_facts(url):
                print("  " + line)
            for phase in phases:
                result = drive(port, clients, phase, args.warmup, args.seconds, meter)
                print(report(result), flush=True)
                failed |= bool(result.errors) or not result.latencies
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
