"""``./attune simulate`` (or ``python -m simulator``): simulated people use a running Attune.

    ./attune simulate --url http://127.0.0.1:8000 --key apk_… [--users FILE.json]
        [--rounds 200] [--out run.jsonl] [--seed 0] [--compare-every 10] [--think 0]
        [--layers-off memory,persona,adapter,vectors] [--layers-keep adapter] [--user-prefix run1-]
        [--task summarize|email] [--max-tokens N] [--temperature T] [--accept rating|edit]

Exit status: 0 when every round got an answer, 1 when some failed (the summary says how), 2 for
bad options or a bad population file (a message, no traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.world.renderer import TASKS
from simulator.population import PopulationError, load_people
from simulator.run import LAYERS, Config, simulate, summary

USAGE_ERROR = 2


def layer_list(value: str) -> tuple[str, ...]:
    """``--layers-off memory,adapter``: known layer names, comma-separated."""
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in LAYERS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown layer(s) {', '.join(unknown)}; choose from {', '.join(LAYERS)}"
        )
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="attune simulate",
        description="Simulated people use a running Attune as one client app's end users.",
    )
    p.add_argument("--url", default=os.environ.get("ATTUNE_SIM_URL", "http://127.0.0.1:8000"))
    p.add_argument(
        "--key", default=os.environ.get("ATTUNE_SIM_KEY"),
        help="a client app's key (apk_…); default: $ATTUNE_SIM_KEY",
    )  # fmt: skip
    p.add_argument("--users", type=Path, help="population JSON (default: the default population)")
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--out", type=Path, help="one JSON line per person-round")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--compare-every", type=int, default=10, metavar="K",
        help="every K-th round ask n=2 and post a comparison (0: never)",
    )  # fmt: skip
    p.add_argument("--think", type=float, default=0.0, help="seconds between a person's rounds")
    p.add_argument(
        "--layers-off", type=layer_list, default=(), metavar="LAYERS",
        help=f"turn these layers off in every request (comma-separated: {', '.join(LAYERS)})",
    )  # fmt: skip
    p.add_argument(
        "--layers-keep", type=layer_list, default=(), metavar="LAYERS",
        help="keep these layers in every request: Attune's layer arbitration may not leave "
        "them out (for ablations)",
    )  # fmt: skip
    p.add_argument(
        "--user-prefix", default="", help="prefix of the end-user names (runs don't share people)"
    )
    p.add_argument("--task", choices=TASKS, default="summarize")
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--temperature", type=float)
    p.add_argument(
        "--accept", choices=("rating", "edit"), default="rating",
        help="an accepted answer gets a thumbs up (rating) or a distance-0 edit (edit)",
    )  # fmt: skip
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)  # exits 2 with a message on bad options
    args.key = (args.key or "").strip()  # a key read from a file often ends in a newline
    if not args.key:
        p.error("give the client app's key: --key apk_… or ATTUNE_SIM_KEY")
    if args.rounds < 1 or args.compare_every < 0 or args.think < 0:
        p.error("--rounds must be ≥ 1, --compare-every and --think ≥ 0")
    try:
        people = load_people(args.users, args.user_prefix, args.seed)
    except PopulationError as err:
        print(f"attune simulate: {err}", file=sys.stderr)
        return USAGE_ERROR
    config = Config(
        url=args.url, key=args.key, users=args.users, rounds=args.rounds, out=args.out,
        seed=args.seed, compare_every=args.compare_every, think=args.think,
        layers_off=args.layers_off, layers_kept=args.layers_keep, user_prefix=args.user_prefix,
        task=args.task,
        max_tokens=args.max_tokens, temperature=args.temperature, accept=args.accept,
        timeout=args.timeout,
    )  # fmt: skip
    result = simulate(config, people)
    print(summary(result))
    return 1 if any(p.errors for p in result.people) else 0


if __name__ == "__main__":
    raise SystemExit(main())
