"""CoPL training at size: one training run over every user of a filled database.

    DATABASE_URL=postgres://…/filled python -m bench._scale_copl
    python -m bench._scale_copl --fill [--users 10000] [--interactions 1000000] [--keep]

Django is set up against ``DATABASE_URL`` (the scale bench's scratch database). ``--fill`` first
makes a scratch database of its own with the feedback that CoPL reads, filled by COPY at the scale
shape (Zipf activity capped at 50,000 interactions per person, ratings on 30% of interactions,
edits on 10%, comparisons 5% drawn from a shared pool of responses), then measures in a fresh
process against it. The run is requested and executed as the ``collab.train`` task does
(``services.request_training``, then ``workers.collab.jobs.run_training`` in this process). Wall
and CPU seconds and the peak RSS of this process and its children are measured over the run;
the last stdout line is JSON ``{"rows": [{"name", "wall_s", "cpu_s", "peak_rss_mib"}]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

SCRATCH = "attune_scale_copl"
HEAVIEST = 50_000
WORDS = 2_000
POOL = 20_000


# -- the fill ------------------------------------------------------------------------------------
def zipf_counts(users: int, total: int, cap: int, exponent: float = 1.2) -> np.ndarray:
    """Interactions per user: Zipf over ranks, at most ``cap`` and at least 1, summing to total."""
    weights = 1.0 / np.arange(1, users + 1) ** exponent
    counts = np.zeros(users)
    free = np.ones(users, dtype=bool)
    left = float(total - users)
    for _ in range(20):  # water-filling: clip at the cap, spread the excess over the others
        share = np.where(free, weights, 0.0)
        counts[free] = share[free] / share.sum() * left
        over = free & (counts > cap - 1)
        if not over.any():
            break
        counts[over] = cap - 1
        free &= ~over
        left = total - users - (cap - 1) * (~free).sum()
    whole = np.floor(counts).astype(np.int64)
    short = total - users - int(whole.sum())  # what flooring lost: +1 to the largest remainders
    whole[np.argsort(whole - counts)[:short]] += 1
    return whole + 1


class Texts:
    """Cheap ~60-word texts from a fixed vocabulary (unique with overwhelming probability)."""

    def __init__(self, rng: np.random.Generator) -> None:
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        lengths = rng.integers(2, 10, WORDS)
        self.words = ["".join(rng.choice(letters, n)) for n in lengths]
        self.rng = rng

    def many(self, n: int, low: int = 40, high: int = 80) -> list[str]:
        lengths = self.rng.integers(low, high, n)
        picks = self.rng.integers(0, WORDS, int(lengths.sum()))
        ends = np.cumsum(lengths)
        words = self.words
        return [
            " ".join(words[i] for i in picks[end - n_words : end])
            for end, n_words in zip(ends.tolist(), lengths.tolist(), strict=True)
        ]

    def edited(self, text: str) -> tuple[str, int]:
        """The text with about a fifth of its words replaced; (edited, words changed)."""
        words = text.split()
        spots = self.rng.integers(0, len(words), max(1, len(words) // 5))
        for spot in spots.tolist():
            words[spot] = self.words[int(self.rng.integers(0, WORDS))] + "x"
        return " ".join(words), len(set(spots.tolist()))


def copy_rows(model: type, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """COPY rows of ``columns`` (attnames) into ``model``'s table; every other NOT NULL column
    gets its field default (so columns added by later migrations need no change here)."""
    from django.db import connection

    now = datetime.now(UTC)
    given = list(columns)
    extra: list[str] = []
    constant: list[Any] = []
    for field in model._meta.concrete_fields:
        if field.attname in given or field.null or field.primary_key:
            continue
        value = (
            now
            if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False)
            else field.get_default()
        )
        extra.append(field.attname)
        constant.append(field.get_db_prep_value(value, connection, prepared=False))
    prep = [model._meta.get_field(c).get_db_prep_value for c in given]
    names = ", ".join(f'"{model._meta.get_field(c).column}"' for c in given + extra)
    count = 0
    with (
        connection.cursor() as cursor,
        cursor.copy(  # type: ignore[attr-defined]
            f"COPY {model._meta.db_table} ({names}) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(
                [p(v, connection, prepared=False) for p, v in zip(prep, row, strict=True)]
                + constant
            )
            count += 1
    with connection.cursor() as cursor:
        table, pk = model._meta.db_table, model._meta.pk.column
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{pk}'), "
            f"(SELECT COALESCE(MAX({pk}), 1) FROM {table}))"
        )
    return count


def fill(users: int, interactions: int, seed: int) -> dict[str, int]:
    """Users, interactions, ratings, edits and comparisons at the scale shape; row counts."""
    from apps.accounts.models import User
    from apps.feedback.models import Comparison, Edit, Interaction, Rating

    rng = np.random.default_rng(seed)
    texts = Texts(rng)
    counts = zipf_counts(users, interactions, min(HEAVIEST, max(1, interactions // 20)))
    owner = np.repeat(np.arange(1, users + 1), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(interactions) - np.repeat(first, counts)
    prompt_of = np.repeat(first, counts) + position // 2  # outputs come two to a prompt
    done = {
        "users": copy_rows(
            User,
            ["id", "username", "password"],
            ((i, f"scale-{i}", "!") for i in range(1, users + 1)),
        )
    }
    rated = rng.random(interactions) < 0.3
    edited = rng.random(interactions) < 0.1
    outputs: dict[int, str] = {}
    prompts: dict[int, str] = {}

    def interaction_rows() -> Iterable[tuple[Any, ...]]:
        for start in range(0, interactions, 50_000):
            stop = min(start + 50_000, interactions)
            batch_out = texts.many(stop - start)
            batch_prompt = texts.many(stop - start, 8, 20)
            for i in range(start, stop):
                prompt = prompts.setdefault(int(prompt_of[i]), batch_prompt[i - start])
                output = batch_out[i - start]
                if rated[i] or edited[i]:
                    outputs[i] = output
                yield (i + 1, int(owner[i]), prompt, output)

    done["interactions"] = copy_rows(
        Interaction, ["id", "user_id", "prompt", "output"], interaction_rows()
    )
    prompts.clear()
    kinds = rng.random(interactions)
    stars = rng.integers(1, 6, interactions)
    done["ratings"] = copy_rows(
        Rating,
        ["user_id", "interaction_id", "thumbs_up", "stars"],
        (
            (
                int(owner[i]),
                i + 1,
                bool(stars[i] >= 3) if kinds[i] < 0.5 else None,
                None if kinds[i] < 0.5 else int(stars[i]),
            )
            for i in np.flatnonzero(rated).tolist()
        ),
    )

    def edit_rows() -> Iterable[tuple[Any, ...]]:
        for i in np.flatnonzero(edited).tolist():
            original = outputs[i]
            changed, distance = texts.edited(original)
            yield int(owner[i]), i + 1, original, changed, distance

    done["edits"] = copy_rows(
        Edit, ["user_id", "interaction_id", "original", "edited", "distance"], edit_rows()
    )
    outputs.clear()
    pool = texts.many(POOL)
    n = interactions // 20
    who = rng.choice(owner, n)  # as active as their interactions
    sides = rng.integers(0, POOL, (n, 2))
    choice = rng.choice(["a", "b", "tie"], n, p=[0.45, 0.45, 0.1])
    asked = texts.many(n, 8, 20)
    done["comparisons"] = copy_rows(
        Comparison,
        ["user_id", "prompt", "response_a", "response_b", "choice"],
        (
            (int(who[k]), asked[k], pool[a], pool[b if b != a else (a + 1) % POOL], str(choice[k]))
            for k, (a, b) in enumerate(sides.tolist())
        ),
    )
    return done


# -- the measured run ----------------------------------------------------------------------------
def setup(url: str | None) -> None:
    if url:
        os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")
    import django

    django.setup()


def usage() -> tuple[float, float]:
    """(CPU seconds, peak RSS in MiB) of this process plus its waited-for children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return cpu, (me.ru_maxrss + kids.ru_maxrss) / 1024  # KiB on Linux


def measure() -> dict[str, Any]:
    """Request one run and execute it here as the Celery task does; the figures."""
    from apps.collab import services
    from apps.collab.models import CollabModelVersion
    from workers.collab.jobs import run_training

    started, cpu0 = time.perf_counter(), usage()[0]
    run, _ = services.request_training(enqueue=False)
    requested = time.perf_counter() - started
    stages: list[tuple[float, str]] = []

    def progress(fraction: float, stage: str, loss: float | None) -> None:
        if not stages or stages[-1][1] != stage:
            stages.append((time.perf_counter() - started, stage))
            print(f"  {stages[-1][0]:7.1f} s  {stage} ({fraction:.0%})", file=sys.stderr)

    result = run_training(run.pk, on_progress=progress)
    wall = time.perf_counter() - started
    cpu, peak = usage()
    run = CollabModelVersion.objects.get(pk=run.pk)
    if run.status != CollabModelVersion.Status.ACTIVE:
        raise SystemExit(f"the run did not finish: {result} {run.status} {run.error}")
    return {
        "name": f"CoPL training ({run.n_users} users)",
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu - cpu0, 1),
        "peak_rss_mib": round(peak, 1),
        "request_s": round(requested, 1),
        "pairs": run.n_pairs,
        "responses": run.n_responses,
        "seconds": run.metrics.get("seconds"),
        "heldout_accuracy": run.metrics.get("heldout_accuracy"),
        "gnn_heldout_accuracy": run.metrics.get("gnn_heldout_accuracy"),
        "stages": [[round(t, 1), s] for t, s in stages],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._scale_copl", description=__doc__)
    parser.add_argument("--fill", action="store_true", help="fill a scratch database first")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--name", default=SCRATCH, help="the scratch database's name")
    args = parser.parse_args(argv)
    if not args.fill:
        setup(None)
        row = measure()
        print(
            f"{row['name']}: {row['wall_s']} s wall, {row['cpu_s']} s CPU, "
            f"peak RSS {row['peak_rss_mib']} MiB; {json.dumps(row)}"
        )
        print(json.dumps({"rows": [row]}))
        return 0
    from bench._support import scratch_database

    with scratch_database(args.name, keep=args.keep) as url:
        setup(url)
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", interactive=False, verbosity=0)
        started = time.perf_counter()
        counts = fill(args.users, args.interactions, args.seed)
        print(f"filled in {time.perf_counter() - started:.0f} s: {counts}", file=sys.stderr)
        connections.close_all()
        env = {**os.environ, "DATABASE_URL": url}
        return subprocess.run([sys.executable, "-m", "bench._scale_copl"], env=env).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
