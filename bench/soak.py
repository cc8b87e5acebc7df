"""Faults under load: a mixed load on a scratch platform while a chaos loop kills its parts.

    ./attune bench soak [--minutes 10] [--quick] [--saturate 12] [--json PATH] [--keep]

What it does, in order:

1. Starts a scratch PostgreSQL (embedded, in a temporary folder; the bench owns it so it can stop
   it) and a scratch platform on it with ``./attune run`` (web, worker, beat, serving; own var
   dir and ports; the built-in model is this machine's built one when ``$ATTUNE_VAR_DIR`` holds
   it, else a small one built in seconds: ``--model``). Seeds people: four with 16 edits each
   (enough to fit an adapter), personal tokens for all, and a client app with three end users.
2. Runs the load for ``--minutes``: readers (``/api/me``, lists), writers (an interaction, its
   rating, half the time an edit: every 201 is an acknowledged write), generators (``/v1``, as
   people and as the app's end users), and a prober that times ``GET /api/me`` every 0.1 s.
   In the first minute ``--saturate`` threads ask ``n=8, max_tokens=480`` generations from one
   token at once: ``/api/me`` p99 meanwhile is the "API under saturated generation" figure.
3. The chaos loop, once each, at 15/35/55/75 % of the run: ``kill -9`` of the gpu worker's pool
   process while a fit runs, of the gpu worker's main process while a fit runs, of the serving
   process; then the database is stopped for 15 s. Recovery after each: seconds until the part
   works again (the gpu worker takes a fit again; a generation is answered 200; ``/api/me``
   answers 200), and for the worker faults also until the fit that was running has succeeded.
4. Afterwards: waits for every fit job to finish, then checks that every acknowledged write is
   a row, and that every job completed exactly once (succeeded, one adapter version).

Figures: requests; 5xx outside the fault windows (target 0), inside the database window (every
one a JSON 503 with ``Retry-After``: target), and while serving restarts; jobs submitted vs
completed once (target equal); acknowledged writes vs rows (target equal); recovery per fault
(target ≤ 30 s); ``/api/me`` p50/p99 while generation is saturated (target p99 < 200 ms).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import _soak_chaos as chaos
from bench import _soak_report as report
from bench._scratch import Database, Platform, scratch_platform
from bench._soak_load import Caller, Client, Recorder, generator, reader, start_threads, writer
from bench._support import percentile

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="attune bench soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--quick", action="store_true", help="3 minutes, for a first look")
    p.add_argument("--saturate", type=int, default=12, help="concurrent n=8 generations")
    p.add_argument("--model", choices=("auto", "small", "built"), default="auto")
    p.add_argument("--json", type=Path, help="write the figures here too")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    args = p.parse_args(argv)
    if args.quick:
        args.minutes = 3.0
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="attune-soak-"))
    print(f"soak: scratch folder {work} (platform log: platform.log)", flush=True)
    # ready: migrated, workers and serving up
    with scratch_platform(work, args.model, "soak", args.keep, 600) as scratch:
        people = chaos.seed(scratch.url)
        figures = run_load(args, scratch.platform, scratch.db, people)
        figures.update(chaos.verify(figures.pop("_recorder"), timeout=600))
        figures["requests"] = report.tally(figures.pop("samples"), figures["faults"])
    print(report.table(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def run_load(
    args: argparse.Namespace, platform: Platform, db: Database, people: chaos.People
) -> dict:
    duration = args.minutes * 60
    rec = Recorder()
    stop, saturation_stop = threading.Event(), threading.Event()
    client = Client(platform.base_url, timeout=60)
    readers, writers = people.callers[:3], people.callers[3:]
    threads = start_threads(
        [
            lambda: reader(client, rec, readers, stop),
            lambda: reader(client, rec, people.app_callers, stop),
            lambda: writer(client, rec, writers, stop, seed=1),
            lambda: writer(client, rec, people.app_callers, stop, seed=2),
            lambda: generator(client, rec, people.callers, stop),
            lambda: generator(client, rec, people.app_callers, stop),
            lambda: chaos.probe_me(client, rec, people.callers[0], stop),
        ]
    )
    saturation = (5.0, min(65.0, 0.14 * duration))
    time.sleep(saturation[0])
    saturator = Caller(people.saturating_key)
    threads += start_threads(
        [
            lambda: generator(client, rec, [saturator], saturation_stop, "saturate", 8, 480)
            for _ in range(args.saturate)
        ]
    )
    time.sleep(saturation[1] - saturation[0])
    saturation_stop.set()
    faults = []
    for share, fault in zip((0.15, 0.35, 0.55, 0.75), chaos.FAULTS, strict=True):
        time.sleep(max(0.0, share * duration - rec.now()))
        print(f"soak: t={rec.now():.0f}s fault: {fault.__name__}", flush=True)
        faults.append(fault(platform, db, people, client, rec))
        print(f"soak:   recovered in {faults[-1]['recovery_seconds']}", flush=True)
    time.sleep(max(0.0, duration - rec.now()))
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    probes = [
        s.seconds
        for s in rec.samples
        if s.kind == "probe" and saturation[0] <= s.at <= saturation[1]
    ]
    return {
        "minutes": args.minutes,
        "saturation": {
            "threads": args.saturate,
            "me_p50_ms": round(1000 * percentile(probes, 50), 1),
            "me_p99_ms": round(1000 * percentile(probes, 99), 1),
            "me_requests": len(probes),
        },
        "faults": faults,
        "_recorder": rec,
    }


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
