"""Attune at size: a scratch database of 10,000 people, p50/p99 of every endpoint and page.

    ./attune bench scale [--users 10000] [--interactions 1000000] [--seed 0] [--requests 300]
                         [--max-seconds 15] [--skip-copl] [--keep] [--json FILE]

What it does, in order:
1. creates a scratch database ``attune_scale_<pid>`` on Attune's PostgreSQL server (the embedded
   one unless ``DATABASE_URL``), migrates it and fills it with ``COPY`` (``bench._scale_fill``:
   Zipf activity, ratings, edits, memory entries with embeddings, comparisons, personas, adapters,
   η, a CoPL version, client apps and end users, fit jobs), printing seconds per table;
2. adds the measured people: the heaviest user, a typical one (median activity), a staff user and
   a writer (fresh interactions to rate), with passwords and personal tokens;
3. starts gunicorn (``attune.wsgi``, 2 workers × 4 threads, as ``bench feedback_writes``) on that
   database with ``bench._scale_settings`` (Attune's URLs plus a bare DRF rating create) and the
   per-user API rate limits raised (they would answer 429 to a benchmark);
4. measures, warm, 4 threads on keep-alive connections, ``--requests`` each (fewer when one
   shape takes ``--max-seconds``): every operation of ``/api/schema/`` (bench._scale_api) and
   every web and console page (bench._scale_pages) for the typical and the heaviest user; rating
   writes against the bare create, alternating, and the ratio of their throughputs
   (bench._scale_writes);
5. runs ``python -m bench._scale_serving --user ID`` and ``python -m bench._scale_copl`` on the
   database (their last stdout line is ``{"rows": [...]}``), unless missing (then the table says
   so) or ``--skip-copl``;
6. deletes the heaviest user's data with ``DELETE /api/my-data`` once, while another user posts
   ratings, and reports the wall time and those ratings' p99 during the delete;
7. prints the table (``bench._scale_report``) and drops the database unless ``--keep``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bench import _scale_fill as fill
from bench import _scale_http as http
from bench import _scale_report as report
from bench._scale_api import api_rows, operations
from bench._scale_http import Caller, Row, Subject
from bench._scale_pages import console_recipes, log_in, page_rows, url_names, web_recipes
from bench._scale_writes import erase_heaviest, rating_vs_bare
from bench._support import scratch_database, server_url, with_database
from bench.feedback_writes import free_port, gunicorn, wait_until_up

PASSWORD = "scale-bench-password"
SERVER_ENV = {
    "GUNICORN_CMD_ARGS": "--env DJANGO_SETTINGS_MODULE=bench._scale_settings",
    "ATTUNE_THROTTLE_USER": "1000000/min",
    "ATTUNE_THROTTLE_APP": "1000000/min",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="./attune bench scale", description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--interactions", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--requests", type=int, default=300, help="requests per measured shape")
    p.add_argument("--max-seconds", type=float, default=15.0, help="cap per measured shape")
    p.add_argument("--concurrency", type=int, default=4, help="threads per measured shape")
    p.add_argument("--skip-copl", action="store_true", help="do not run bench._scale_copl")
    p.add_argument("--skip-serving", action="store_true", help="do not run bench._scale_serving")
    p.add_argument("--sibling-timeout", type=float, default=1800.0, help="seconds per sibling")
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    p.add_argument(
        "--reuse",
        metavar="NAME",
        help="measure a kept database (same shape options; "
        "one whose run stopped before its final delete) instead of filling one",
    )
    p.add_argument("--json", type=Path, help="write the figures here too")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    http.CONCURRENCY[0] = args.concurrency
    signal.signal(signal.SIGTERM, stop)  # a timeout's TERM still stops gunicorn, drops the data
    rows: list[Row] = []
    if args.reuse:
        database = nullcontext(with_database(server_url(), args.reuse))
    else:
        database = scratch_database(f"attune_scale_{os.getpid()}", keep=args.keep)
    with database as url:
        began = time.perf_counter()
        shape = fill.plan(args.users, args.interactions, args.seed)
        migrate(url)
        if args.reuse:
            summary = {"summary": f"reused the database {args.reuse}", "tables": {}}
        else:
            filler = fill.fill(url, shape, progress=not args.no_progress)
            summary = report.fill_summary(filler, shape, time.perf_counter() - began)
        summary["counts"] = counts()
        summary["heaviest_memory_entries"] = memory_of(shape.heaviest)
        print("fill: " + summary["summary"], flush=True)
        if args.keep:
            print(f"scale: keeping the database {url}", flush=True)
        people = prepare(shape, args.requests)
        machine = report.machine_facts(url)
        os.environ.update(SERVER_ENV)
        port = free_port()
        with gunicorn(url, port, workers=2, threads=4):
            wait_until_up(port, people["staff"][1], timeout=120)
            try:
                measure(args, f"http://127.0.0.1:{port}", people, rows, url)
            except Exception as err:  # the rows so far are still worth a table
                traceback.print_exc()
                rows.append(Row("api", "the run stopped early", "-", note=f"{err!r}"[:300]))
    found = [report.figures(r) for r in rows]
    print(report.table(found, summary, machine))
    if args.json:
        report.write_json(args.json, found, summary, machine, vars(args))
    return 0


def stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def migrate(url: str) -> str:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from attune.celery import app

    call_command("migrate", interactive=False, verbosity=0)
    with app.connection_for_write() as broker:  # declared now, not by racing gunicorn workers
        for queue in app.amqp.queues.values():
            queue(broker.default_channel).declare()
    return url


def counts() -> dict[str, int]:
    """Rows per filled model, read back from the database."""
    from django.apps import apps

    labels = (
        "accounts.User",
        "accounts.ClientApp",
        "feedback.Interaction",
        "feedback.Rating",
        "feedback.Edit",
        "feedback.Comparison",
        "memory.MemoryEntry",
        "personas.PersonaProfile",
        "adapters.AdapterVersion",
        "adapters.FitJob",
        "adapters.PreferenceCoefficient",
        "collab.UserEmbedding",
    )
    return {label: apps.get_model(label).objects.count() for label in labels}


def memory_of(user_id: int) -> int:
    from apps.memory.models import MemoryEntry

    return MemoryEntry.objects.filter(user_id=user_id).count()


def prepare(shape: fill.Plan, requests: int) -> dict[str, tuple[int, str, list[int]]]:
    """The measured people: (user id, token, some interaction ids), by role."""
    from apps.accounts.models import User
    from apps.accounts.services import issue_personal_token
    from apps.feedback.models import Interaction
    from apps.personas.selectors import persona_of
    from apps.personas.services import set_persona

    User.objects.filter(username__in=["scale-staff", "scale-writer"]).delete()  # --reuse
    staff = User.objects.create_user("scale-staff", password=PASSWORD, is_staff=True)
    writer = User.objects.create_user("scale-writer", password=PASSWORD)
    Interaction.objects.bulk_create(
        Interaction(
            user=writer,
            prompt=f"Summarize note {i}.",
            source="news",
            output="The team agreed on the plan for spring.",
        )
        for i in range(4 * requests + 200)
    )
    found = {}
    for role, user in (
        ("typical", User.objects.get(pk=shape.typical)),
        ("heaviest", User.objects.get(pk=shape.heaviest)),
        ("staff", staff),
        ("writer", writer),
    ):
        if persona_of(user) is None:  # so GET /api/persona reads one
            set_persona(user, text="I write short notes for my team.", attributes={})
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
        ids = list(
            Interaction.objects.filter(user=user)
            .order_by("id")
            .values_list("id", flat=True)[: 4 * requests + 200]
        )
        found[role] = (user.pk, issue_personal_token(user, "scale").key, ids)
    from django.db import connections

    connections.close_all()
    return found


def measure(args: argparse.Namespace, base: str, people: dict, rows: list[Row], url: str) -> None:
    def on_row(row: Row) -> None:
        rows.append(row)
        shown = f"p50 {row.p(50):.1f} p99 {row.p(99):.1f} ms n {len(row.latencies)}"
        if row.errors:
            shown += f" statuses {dict(row.statuses)}"
        found = shown if row.latencies else row.note or str(row.extra)
        print(f"  {row.area:<8} {row.user:<9} {row.name[:60]:<60} {found}", flush=True)

    subjects = {
        role: Subject(role, uid, Caller(base, role, {"Authorization": f"Bearer {token}"}), ids)
        for role, (uid, token, ids) in people.items()
    }
    staff = subjects["staff"]
    ops = operations(staff.caller)
    n, cap = args.requests, args.max_seconds
    for role in ("typical", "heaviest"):
        api_rows(ops, subjects[role], staff, n, cap, on_row)
    names = url_names()
    for role in ("typical", "heaviest"):
        web = log_in(base, role, username_of(people[role][0]), PASSWORD)
        page_rows("web", names["web"], web_recipes(subjects[role], web), web, "", n, cap, on_row)
    console = log_in(base, "staff", "scale-staff", PASSWORD)
    recipes = console_recipes(subjects["heaviest"], subjects["typical"])
    page_rows("console", names["console"], recipes, console, "/console", n, cap, on_row)
    rating_vs_bare(subjects["writer"], n, on_row)
    siblings(url, people["heaviest"][0], args, on_row)
    erase_heaviest(subjects["heaviest"], subjects["writer"], on_row)


def username_of(user_id: int) -> str:
    from apps.accounts.models import User

    return User.objects.get(pk=user_id).username


def siblings(url: str, heaviest: int, args: argparse.Namespace, on_row: Any) -> None:
    """The in-process figures of ``bench._scale_serving`` and ``bench._scale_copl``."""
    from attune.cli import python_env

    runs = []
    for skip, area, module, extra in (
        (args.skip_serving, "serving", "bench._scale_serving", ["--user", str(heaviest)]),
        (args.skip_copl, "copl", "bench._scale_copl", []),
    ):
        if skip:
            on_row(Row(area, module, "-", note=f"not measured: --skip-{area}"))
        else:
            runs.append((area, module, extra))
    for area, module, extra in runs:
        if importlib.util.find_spec(module) is None:
            on_row(Row(area, module, "-", note=f"not measured: {module} is missing"))
            continue
        env = python_env(DATABASE_URL=url)
        env.pop("GUNICORN_CMD_ARGS", None)
        command = [sys.executable, "-m", module, *extra]
        try:
            done = subprocess.run(
                command, env=env, text=True, capture_output=True, timeout=args.sibling_timeout
            )
        except subprocess.TimeoutExpired:
            on_row(Row(area, module, "-", note=f"not measured: over {args.sibling_timeout:g} s"))
            continue
        lines = done.stdout.strip().splitlines()
        try:
            found = json.loads(lines[-1])["rows"]
        except (IndexError, ValueError, KeyError, TypeError):
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            on_row(
                Row(
                    area, module, "-", note=f"not measured: exit {done.returncode}, {tail[0][:150]}"
                )
            )
            continue
        for item in found:
            on_row(sibling_row(area, item))


def sibling_row(area: str, item: dict[str, Any]) -> Row:
    extra = {k: v for k, v in item.items() if k not in {"name", "user", "target"}}
    if area == "serving":
        target = item.get("target", "p99 < 20 ms")
        extra.setdefault("met", item.get("met", item.get("p99_ms", 1e9) < 20))
    else:
        target = item.get("target", "≤ 15 min, peak ≤ 4 GiB")
        extra.setdefault(
            "met",
            item.get(
                "met", item.get("wall_s", 1e9) <= 900 and item.get("peak_rss_mib", 1e9) <= 4096
            ),
        )
    return Row(
        area,
        str(item["name"]),
        str(item.get("user", "heaviest" if area == "serving" else "all")),
        target=target,
        extra=extra,
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
