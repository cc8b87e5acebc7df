"""``simulate(config) -> Result``: every person of a population plays their rounds against a
running Attune, concurrently (a thread each, each person's rounds in order).

A round: a context of one of the person's sources; the request the platform's own Ask page and
benchmarks send (``core.prompting.build_instruction``: "Summarize the following news item." and
the text, from which Attune also learns the source); the answer judged with the preferences in
force at that round; then what a person does in a UI: thumbs up (or a distance-0 edit,
``accept="edit"``) when it suits them, ``POST /api/edits`` with their edited text when not. Every
``compare_every`` rounds the person asks for two answers, keeps the one that costs them less and
says so with ``POST /api/comparisons``. One JSON line per person-round goes to ``out``; every write
Attune acknowledged is kept (kind, id), so a benchmark can check all of them are in its database.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from core.prompting import build_instruction
from simulator.client import AttuneClient, RequestFailed
from simulator.population import Person, load_people

LAYERS = ("memory", "persona", "adapter", "vectors")
WINDOW = 20  # rounds in the "first" and "last" means of the summary


@dataclass(frozen=True)
class Config:
    """One simulation run (the CLI's options)."""

    url: str
    key: str
    users: Path | None = None  # the population file; None: the default population
    rounds: int = 200
    out: Path | None = None
    seed: int = 0
    compare_every: int = 10  # every K-th round asks n=2 and posts a comparison; 0: never
    think: float = 0.0  # seconds between a person's rounds
    layers_off: tuple[str, ...] = ()
    layers_kept: tuple[str, ...] = ()  # kept out of Attune's layer arbitration (for ablations)
    user_prefix: str = ""
    task: str = "summarize"
    max_tokens: int | None = None
    temperature: float | None = None
    accept: str = "rating"  # how an accepted answer is acknowledged: "rating" or "edit"
    timeout: float = 120.0
    quiet: bool | None = None  # True: no progress bar; None: a bar only on a terminal


@dataclass
class PersonResult:
    """One person's run: their end-user name, cost per round (None: the round failed)."""

    user: str
    costs: list[int | None] = field(default_factory=list)
    errors: int = 0
    server_errors: int = 0  # 5xx answers seen
    waits: int = 0  # 429/503 answers waited out
    reconnects: int = 0  # dropped connections tried again
    acknowledged: int = 0

    def mean(self, rounds: Sequence[int | None]) -> float | None:
        done = [c for c in rounds if c is not None]
        return sum(done) / len(done) if done else None


@dataclass
class Result:
    """What a run did: one record per person-round, the writes Attune acknowledged as
    ``(kind, id)`` with kind ``edit``, ``rating`` or ``comparison``, per person figures."""

    records: list[dict[str, Any]]
    acknowledged: list[tuple[str, int]]
    people: list[PersonResult]
    seconds: float


class _Run:
    """Shared state of one run: the output file, the progress bar, the collected results."""

    def __init__(self, config: Config, total: int, out: IO[str] | None) -> None:
        self.config, self.out = config, out
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        self.acknowledged: list[tuple[str, int]] = []
        self.bar = tqdm(total=total, desc="rounds", unit="round", disable=config.quiet)
        self.started = time.time()

    def record(self, row: dict[str, Any], acks: list[tuple[str, int]]) -> None:
        with self.lock:
            self.records.append(row)
            self.acknowledged.extend(acks)
            if self.out is not None:
                self.out.write(json.dumps(row) + "\n")
                self.out.flush()
            self.bar.update(1)


def _attune_options(config: Config) -> dict[str, Any]:
    layers = {name: True for name in config.layers_kept}
    layers.update({name: False for name in config.layers_off})
    return {"layers": layers} if layers else {}


def _act(
    client: AttuneClient,
    config: Config,
    interaction_id: int,
    accepted: bool,
    edited: str,
    statuses: list[int],
) -> tuple[str, int]:
    """What the person does with the answer they keep; the acknowledged write."""
    if accepted and config.accept == "rating":
        body = {"interaction": interaction_id, "thumbs": "up"}
        return "rating", int(client.post("/api/ratings", body, statuses)["id"])
    body = {"interaction": interaction_id, "edited": edited}
    return "edit", int(client.post("/api/edits", body, statuses)["id"])


def play_round(
    person: Person, client: AttuneClient, config: Config, round_number: int
) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """One round of one person: (its record, the writes Attune acknowledged)."""
    context = person.next_context(round_number)
    judge = person.user.at_round(round_number)
    compare = config.compare_every > 0 and round_number % config.compare_every == (
        config.compare_every - 1
    )
    row: dict[str, Any] = {
        "user": person.name, "person": person.user.user_id, "round": round_number,
        "source": context.source, "context_seed": context.seed, "compared": compare,
        "cost": None, "costs": None, "accepted": None, "interaction_id": None,
        "layers_applied": None, "memory_entry_ids": None, "adapter_version": None,
        "preference": None, "latency_ms": None, "statuses": [], "acknowledged": [], "error": None,
    }  # fmt: skip
    statuses: list[int] = row["statuses"]
    acks: list[tuple[str, int]] = []
    seed = person.rng.randrange(2**31)
    try:
        messages = [
            {
                "role": "user",
                "content": build_instruction(config.task, context.text, None, context.source),
            }
        ]
        answer = client.chat(
            messages, statuses, n=2 if compare else 1, max_tokens=config.max_tokens,
            temperature=config.temperature, seed=seed, attune=_attune_options(config),
        )  # fmt: skip
        row["latency_ms"] = round(answer.latency_ms, 1)
        info = answer.attune
        row["layers_applied"] = (info.get("layers") or {}).get("applied")
        row["memory_entry_ids"] = info.get("memory_entry_ids")
        row["adapter_version"] = info.get("adapter_version")
        row["preference"] = info.get("conditioning_preference")
        responses = [judge.respond(context, config.task, text) for text in answer.texts]
        kept = min(range(len(responses)), key=lambda i: responses[i].cost)
        interaction_id = answer.interaction_ids[kept]
        row.update(interaction_id=interaction_id, cost=responses[kept].cost)
        row["costs"] = [r.cost for r in responses]
        row["accepted"] = responses[kept].accepted
        if compare and len(responses) == 2:
            a, b = (r.cost for r in responses)
            choice = "a" if a < b else "b" if b < a else "tie"
            body = {
                "interaction_a": answer.interaction_ids[0],
                "interaction_b": answer.interaction_ids[1],
                "choice": choice,
            }
            acks.append(("comparison", int(client.post("/api/comparisons", body, statuses)["id"])))
        edited = responses[kept]
        acks.append(_act(client, config, interaction_id, edited.accepted, edited.edited, statuses))
    except RequestFailed as err:
        row["error"] = str(err)
    except Exception as err:  # a bug or a malformed answer: recorded, and the person goes on
        row["error"] = f"{type(err).__name__}: {err}"
    row["acknowledged"] = [list(a) for a in acks]
    row["time"] = time.time()
    return row, acks


def _play_person(person: Person, config: Config, run: _Run, result: PersonResult) -> None:
    key = person.key or config.key  # a personal token of their own, or the app's key
    client = AttuneClient(config.url, key, person.end_user, timeout=config.timeout)
    try:
        if config.layers_off:  # the person's own setting too: what they would do on /me
            client.send("PATCH", "/api/layers", dict.fromkeys(config.layers_off, False), [])
        for round_number in range(config.rounds):
            if round_number and config.think > 0:
                time.sleep(config.think)
            row, acks = play_round(person, client, config, round_number)
            result.costs.append(row["cost"])
            result.errors += row["error"] is not None
            result.server_errors += sum(1 for s in row["statuses"] if s >= 500)
            result.acknowledged += len(acks)
            run.record(row, acks)
    finally:
        result.waits, result.reconnects = client.waits, client.reconnects
        client.close()


def simulate(config: Config, people: list[Person] | None = None) -> Result:
    """Play the population (``config.users``, or ``people`` given) for ``config.rounds`` rounds;
    raises :class:`simulator.population.PopulationError` for a bad population file. A person
    with a key of their own (:func:`simulator.population.token_person`) plays with it, as its
    user; the others are end users of the app whose key is ``config.key``."""
    unknown = (set(config.layers_off) | set(config.layers_kept)) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown layers {sorted(unknown)}; the layers are {', '.join(LAYERS)}")
    if config.accept not in ("rating", "edit"):
        raise ValueError("accept must be 'rating' or 'edit'")
    if people is None:
        people = load_people(config.users, config.user_prefix, config.seed)
    results = [PersonResult(p.name) for p in people]
    out = config.out.open("w", encoding="utf-8") if config.out else None
    run = _Run(config, len(people) * config.rounds, out)
    try:
        threads = [
            threading.Thread(
                target=_play_person,
                args=(p, config, run, r),
                name=f"sim-{p.name}",
                daemon=True,  # Ctrl-C ends the run
            )
            for p, r in zip(people, results, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        run.bar.close()
        if out is not None:
            out.close()
    return Result(run.records, run.acknowledged, results, time.time() - run.started)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def summary(result: Result) -> str:
    """The printed summary: per person cumulative cost, mean cost per round over the first and
    last ``WINDOW`` rounds, errors, 5xx answers, waits and acknowledged writes."""
    lines = [
        f"{'user':<28} {'rounds':>6} {'cost':>8} {'first20':>8} {'last20':>8} "
        f"{'errors':>6} {'5xx':>4} {'waits':>5} {'acked':>6}"
    ]
    for p in result.people:
        done = [c for c in p.costs if c is not None]
        lines.append(
            f"{p.user:<28} {len(done):>6} {sum(done):>8} {_fmt(p.mean(p.costs[:WINDOW])):>8} "
            f"{_fmt(p.mean(p.costs[-WINDOW:])):>8} {p.errors:>6} {p.server_errors:>4} "
            f"{p.waits:>5} {p.acknowledged:>6}"
        )
    rounds = sum(len(p.costs) for p in result.people)
    lines.append(
        f"{len(result.people)} people, {rounds} rounds in {result.seconds:.1f} s; "
        f"{sum(p.errors for p in result.people)} errors, "
        f"{sum(p.server_errors for p in result.people)} 5xx, "
        f"{sum(p.waits for p in result.people)} waits (429/503), "
        f"{sum(p.reconnects for p in result.people)} reconnects, "
        f"{len(result.acknowledged)} acknowledged writes"
    )
    return "\n".join(lines)
