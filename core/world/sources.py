"""Context sources of the offline world: endless, seed-reproducible families of documents.

Each source is a template family with slots. ``make_context(source, seed)`` fills the slots from a
generator seeded by ``(source, seed)``, and returns the document together with its key facts, in
order of importance, each as a neutral clause the renderer can restate in any style.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from core.world.source_families import FAMILIES, Source

__all__ = ["SOURCES", "SOURCE_NAMES", "Context", "Fact", "Source", "contexts", "make_context"]


@dataclass(frozen=True)
class Fact:
    """One key fact of a context: its slot, the value that must survive, a neutral clause."""

    key: str
    value: str
    clause: str


@dataclass(frozen=True)
class Context:
    """One document of a source, with its key facts in order of importance."""

    source: str
    seed: int
    title: str
    text: str
    facts: tuple[Fact, ...]


SOURCES: dict[str, Source] = FAMILIES
SOURCE_NAMES: tuple[str, ...] = tuple(SOURCES)


def make_context(source: str, seed: int) -> Context:
    """The context number ``seed`` of ``source``; the same pair always gives the same context."""
    spec = SOURCES[source]
    rng = random.Random(f"{source}:{seed}")
    slots = spec.slots(rng)
    facts = tuple(
        Fact(key=key, value=slots[key], clause=rng.choice(phrasings).format(**slots))
        for key, phrasings in spec.facts
    )
    clauses = {f"f{i}": fact.clause for i, fact in enumerate(facts)}
    capitals = {f"F{i}": c[0].upper() + c[1:] for i, c in enumerate(clauses.values())}
    title = spec.title.format(**slots)
    text = f"{title}\n{spec.document.format(**slots, **clauses, **capitals)}"
    return Context(source=source, seed=seed, title=title, text=text, facts=facts)


def contexts(source: str, start_seed: int = 0) -> Iterator[Context]:
    """The endless family of ``source``: contexts ``start_seed``, ``start_seed + 1``, ..."""
    seed = start_seed
    while True:
        yield make_context(source, seed)
        seed += 1


def sample_context(rng: random.Random) -> Context:
    """A context of a source drawn uniformly, with a seed drawn from ``rng``."""
    return make_context(rng.choice(SOURCE_NAMES), rng.randrange(2**31))
