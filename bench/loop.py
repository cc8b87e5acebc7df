"""The whole loop through the product: simulated people use a scratch Attune, per configuration.

    ./attune bench loop [--users FILE] [--rounds 200] [--configs base,memory,...] [--plot F.png]
                        [--json F] [--model auto|small|built] [--keep]

What it does:

1. Starts a scratch platform as an operator would: its own embedded PostgreSQL and ``./attune
   run`` on it (web, one worker process, the gpu worker, beat, serving), the built-in model of
   this machine (``$ATTUNE_VAR_DIR``'s) or, with ``--model small``, one built in seconds. Creates a
   client app; each simulated person is an end user of it, once per configuration.
2. Plays the population (``core/world/populations/changing.json`` by default: the six default
   people, two of whom change their taste at round 120) through ``simulator.simulate`` for every
   configuration at once, each with its own end users: ``base`` (every layer off), ``memory``
   (CIPHER memory alone), ``memory+persona``, ``adapters`` (the user's LoRA and the preference
   vectors alone, kept out of arbitration) and ``all`` (every layer, with layer arbitration).
   Edits and comparisons go to the API; the worker learns memory entries and fits adapters
   (``ATTUNE_FIT_TRIGGER_PAIRS`` new pairs start a fit) as it would for real people.
3. Meanwhile a poller notes when each edit's memory entry becomes retrievable.

Figures per configuration: cumulative edit cost per person (mean ± std; ratio to ``base``), mean
cost per round over the first and last 20 rounds, recovery after a change (rounds until the
10-round mean cost of the people who changed is back within 1.5× their 30 rounds before it, or
within 1 word a round where that is more), learning lag (edit committed → its memory entry
retrievable, p50/p99; the 16th pair → the first answer with an adapter), generation latency
p50/p99, fit jobs, errors and 5xx answers, and whether every acknowledged write is in the
database. ``--plot`` draws the cost per round per configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import _loop_report as report
from bench._loop_watch import LagPoller, seed_app, verify_writes
from bench._scratch import scratch_platform

ROOT = Path(__file__).resolve().parents[1]
POPULATION = ROOT / "core" / "world" / "populations" / "changing.json"
LAYERS = ("memory", "persona", "adapter", "vectors")
CONFIGS: dict[str, dict[str, bool]] = {
    "base": {layer: False for layer in LAYERS},
    "memory": {"memory": True, "persona": False, "adapter": False, "vectors": False},
    "memory+persona": {"adapter": False, "vectors": False},
    "adapters": {"memory": False, "persona": False, "adapter": True, "vectors": True},
    "all": {},  # every layer, arbitrated
}
PERSONA_CONFIGS = ("memory+persona", "all")
PLATFORM_SETTINGS = {
    # 30 people through one app: 3 web processes × 3 generations in flight fill the serving
    # process's batches of 8
    "ATTUNE_WEB_WORKERS": "3",
    # torch in the workers (fits, embeddings) one thread each: the serving process keeps its own
    # (ATTUNE_SERVING_THREADS), and 2 cores are not oversubscribed by a fit beside generation
    "OMP_NUM_THREADS": "1",
    "ATTUNE_GENERATION_PROCESS_CONCURRENCY": "3",
    "ATTUNE_THROTTLE_GENERATION_APP": "100000/min",
    "ATTUNE_THROTTLE_APP": "100000/min",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="attune bench loop", description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=Path, default=POPULATION, help="population JSON")
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument(
        "--configs", default=",".join(CONFIGS), help="comma-separated, of: " + ", ".join(CONFIGS)
    )
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", type=Path, help="draw cost per round per configuration (PNG)")
    p.add_argument("--json", type=Path, help="write the figures here too")
    p.add_argument("--records", type=Path, help="folder for each configuration's JSON Lines")
    p.add_argument("--model", choices=("auto", "small", "built"), default="auto")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    args = p.parse_args(argv)
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(args.configs) - set(CONFIGS)
    if unknown or not args.configs:
        p.error(f"unknown configurations {sorted(unknown)}; choose from {', '.join(CONFIGS)}")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    from simulator.population import PopulationError, load_people

    try:
        load_people(args.users)  # a bad file fails before anything starts
    except PopulationError as err:
        print(f"bench loop: {err}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="attune-loop-"))
    records = args.records or work / "records"
    records.mkdir(parents=True, exist_ok=True)
    print(f"loop: scratch folder {work} (platform log: platform.log)", flush=True)
    with scratch_platform(work, args.model, "loop", args.keep, 900, **PLATFORM_SETTINGS) as scratch:
        key = seed_app(scratch.url, args.users, [c for c in args.configs if c in PERSONA_CONFIGS])
        for chatty in ("httpx", "httpx2", "openai"):  # a line per request otherwise
            logging.getLogger(chatty).setLevel(logging.WARNING)
        figures = play(args, scratch.platform.base_url, key, records)
    print(report.table(figures))
    if args.plot:
        report.plot(figures, args.plot)
        print(f"loop: plot written to {args.plot}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def play(args: argparse.Namespace, url: str, key: str, records: Path) -> dict:
    """Every configuration at once (each its own end users), while the poller notes lags."""
    from simulator.population import load_people
    from simulator.run import Config, simulate

    results: dict[str, object] = {}
    poller = LagPoller()
    poller.start()
    warm_up(url, key, args, poller)

    def one(name: str) -> None:
        layers = CONFIGS[name]
        config = Config(
            url=url, key=key, users=args.users, rounds=args.rounds, seed=args.seed,
            out=records / f"{name}.jsonl", user_prefix=f"{name}-", quiet=True,
            layers_off=tuple(k for k, on in layers.items() if not on),
            layers_kept=tuple(k for k, on in layers.items() if on),
            max_tokens=args.max_tokens,
        )  # fmt: skip
        results[name] = simulate(config)

    threads = [threading.Thread(target=one, args=(name,), daemon=True) for name in args.configs]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    people = load_people(args.users)
    report.follow(records, args.configs, args.rounds * len(people) * len(args.configs), threads)
    poller.stop()
    seconds = time.monotonic() - started
    missing = [name for name in args.configs if name not in results]
    if missing:
        raise RuntimeError(f"configurations {missing} did not finish (see platform.log)")
    changes = {p.user.user_id: p.user.changes[0].at_round for p in people if p.user.changes}
    figures = report.figures(results, poller.lags(), args.rounds, seconds, changes)
    figures["writes"] = verify_writes(
        [ack for result in results.values() for ack in result.acknowledged]
    )
    return figures


def warm_up(url: str, key: str, args: argparse.Namespace, poller: LagPoller) -> None:
    """Two people of their own play a few rounds first, until an edit has been learned: the
    figures are the platform's steady state, not its first seconds (models loading)."""
    from simulator.population import load_people
    from simulator.run import Config, simulate

    started = time.monotonic()
    people = load_people(args.users, "warmup-", args.seed)[:2]
    config = Config(url=url, key=key, rounds=4, user_prefix="warmup-", quiet=True)
    simulate(config, people=people)
    while not poller.seen and time.monotonic() - started < 300:
        time.sleep(0.5)
    print(f"loop: warmed up in {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
