"""``./attune``: Attune's single entry point.

    ./attune run            the platform: database, migrations, web server, Celery worker and
                            beat, the serving process (generation); restarts a part that dies
    ./attune demo           ./attune run, filled by simulated people (first run only), so that
                            every page has data; keeps running until Ctrl-C
    ./attune test [ARGS]    the whole test suite (ARGS go to pytest)
    ./attune bench [NAME]   benchmarks that print figures (no NAME lists them)
    ./attune simulate ARGS  simulated people use a running Attune as a client app's end users
    ./attune manage ARGS    Django's manage.py with Attune's environment
    ./attune db start|stop|status|url

The ``./attune`` shell script creates the virtualenv and installs requirements.txt first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

from attune import embedded_db
from attune.preflight import PreflightError

ROOT = Path(__file__).resolve().parents[2]


def fail(message: str) -> int:
    print(f"attune: {message}", file=sys.stderr)
    return 1


def python_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: the project and its package folder on the path."""
    env = dict(os.environ, **extra)
    paths = [str(ROOT), str(ROOT / "platform")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")
    return env


def run_parts(args: argparse.Namespace) -> list[str]:
    """The parts ``./attune run`` starts: ``--only`` (or all), less each ``--no-PART``
    (``--no-worker``: no Celery worker at all, the gpu one included)."""
    from attune.runner import PARTS

    chosen = args.only or list(PARTS)
    dropped = {part for part in PARTS if getattr(args, "no_" + part.replace("-", "_"))}
    if args.no_worker:
        dropped.add("gpu-worker")
    return [part for part in chosen if part not in dropped]


def part_list(value: str) -> list[str]:
    """``--only web,worker``: known part names, comma-separated."""
    from attune.runner import PARTS

    parts = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [part for part in parts if part not in PARTS]
    if unknown or not parts:
        named = ", ".join(unknown) or "(none given)"
        raise argparse.ArgumentTypeError(f"unknown part(s) {named}; choose from {', '.join(PARTS)}")
    return parts


def cmd_run(args: argparse.Namespace) -> int:
    from attune.runner import run

    parts = run_parts(args)
    if not parts:
        return fail("nothing to run: every part was left out")
    try:
        return run(host=args.host, port=args.port, parts=parts)
    except PreflightError as err:
        return fail(str(err))


def cmd_demo(args: argparse.Namespace) -> int:
    from attune.demo import demo_options, run_demo

    try:
        return run_demo(args.host, args.port, demo_options(args))
    except PreflightError as err:
        return fail(str(err))


def population_size(value: str) -> int:
    """``--people N``: 1 to the default population's size."""
    from core.world.simulated_users import load_population

    size = len(load_population())
    if not value.isdigit() or not 1 <= int(value) <= size:
        raise argparse.ArgumentTypeError(f"choose 1 to {size} (the default population's people)")
    return int(value)


def positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("a whole number ≥ 1")
    return int(value)


def cmd_test(args: argparse.Namespace) -> int:
    command = [sys.executable, "-m", "pytest", *args.pytest_args]
    env = python_env()
    env.pop("DJANGO_SETTINGS_MODULE")  # pytest.ini_options names the test settings
    return subprocess.call(command, cwd=ROOT, env=env)


def cmd_bench(args: argparse.Namespace) -> NoReturn:
    """The benchmark replaces this process (exec): a signal (Ctrl-C, ``timeout``'s SIGTERM) reaches
    it, so it stops the scratch platform it started instead of leaving it running."""
    command = [sys.executable, "-m", "bench", *args.bench_args]
    os.chdir(ROOT)
    os.execve(sys.executable, command, python_env())


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulator.__main__ import main as simulate  # client side: no Django, no torch

    return simulate(args.simulate_args)


def cmd_manage(args: argparse.Namespace) -> int:
    command = [sys.executable, str(ROOT / "manage.py"), *args.manage_args]
    return subprocess.call(command, cwd=ROOT, env=python_env())


def cmd_db(args: argparse.Namespace) -> int:
    if os.environ.get("DATABASE_URL") and args.action != "url":
        return fail("DATABASE_URL is set: Attune uses that server, not the embedded one")
    if args.action == "start":
        uri, started = embedded_db.start()
        print(("started " if started else "already running ") + uri)
    elif args.action == "stop":
        embedded_db.stop()
        print("stopped")
    elif args.action == "status":
        uri = embedded_db.running_uri()
        print(f"running {uri}" if uri else "stopped")
    else:
        print(os.environ.get("DATABASE_URL") or embedded_db.running_uri() or "stopped")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="attune", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the platform (web, API, workers) until Ctrl-C")
    run.add_argument("--host", default=os.environ.get("ATTUNE_HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("ATTUNE_PORT", "8000")))
    run.add_argument(
        "--only", type=part_list, metavar="PARTS",
        help="run only these parts, comma-separated: web, worker, gpu-worker, beat, serving",
    )  # fmt: skip
    run.add_argument("--no-web", action="store_true", help="no web server (it runs elsewhere)")
    run.add_argument("--no-worker", action="store_true", help="no Celery workers (run elsewhere)")
    run.add_argument(
        "--no-gpu-worker", action="store_true", help="no gpu-queue worker (fits run elsewhere)"
    )
    run.add_argument(
        "--no-beat", action="store_true", help="no Celery beat (one per installation: elsewhere)"
    )
    run.add_argument(
        "--no-serving", action="store_true", help="no generation process (it runs elsewhere)"
    )
    run.set_defaults(func=cmd_run)

    from attune.demo_fill import DEMO_ROUNDS

    demo = sub.add_parser(
        "demo", help="run the platform filled with simulated people's data, until Ctrl-C"
    )
    demo.add_argument("--host", default=os.environ.get("ATTUNE_HOST", "127.0.0.1"))
    demo.add_argument("--port", type=int, default=int(os.environ.get("ATTUNE_PORT", "8000")))
    demo.add_argument(
        "--people", type=population_size, default=6,
        help="how many of the default population's people play, besides demo (6)",
    )  # fmt: skip
    demo.add_argument(
        "--rounds", type=positive, default=DEMO_ROUNDS, help=f"rounds each ({DEMO_ROUNDS})"
    )
    demo.add_argument(
        "--no-wait", action="store_true",
        help="don't wait for the vector, the adapter and the CoPL run (they finish meanwhile)",
    )  # fmt: skip
    demo.add_argument(
        "--refill", action="store_true", help="fill again with new people (filled installs)"
    )
    demo.set_defaults(func=cmd_demo)

    test = sub.add_parser("test", help="run the test suite", add_help=False)
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test.set_defaults(func=cmd_test)

    bench = sub.add_parser("bench", help="run a benchmark", add_help=False)
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(func=cmd_bench)

    simulate = sub.add_parser(
        "simulate", help="simulated people use a running Attune", add_help=False
    )
    simulate.add_argument("simulate_args", nargs=argparse.REMAINDER)
    simulate.set_defaults(func=cmd_simulate)

    manage = sub.add_parser("manage", help="Django manage.py", add_help=False)
    manage.add_argument("manage_args", nargs=argparse.REMAINDER)
    manage.set_defaults(func=cmd_manage)

    db = sub.add_parser("db", help="the embedded PostgreSQL server")
    db.add_argument("action", choices=["start", "stop", "status", "url"])
    db.set_defaults(func=cmd_db)
    return p


PASS_THROUGH = {
    "test": "pytest_args",
    "bench": "bench_args",
    "simulate": "simulate_args",
    "manage": "manage_args",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PASS_THROUGH:  # everything after the command belongs to the tool
        command = argv[0]
        funcs = {
            "test": cmd_test,
            "bench": cmd_bench,
            "simulate": cmd_simulate,
            "manage": cmd_manage,
        }
        return int(funcs[command](argparse.Namespace(**{PASS_THROUGH[command]: argv[1:]})))
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
