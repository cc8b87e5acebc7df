"""How the style model restyles real prose it never saw: faithfulness, coverage, loops, style.

Used by ``bench world``. Two sets of real paragraphs, neither trained on: the held-out side of
the prose found on this machine (``workers.modeling.prose_sources``, paragraphs of three
sentences or more), and the paragraphs committed as test data (``tests/data/real_paragraphs.json``:
news, science, office mail, written for Attune). Each gets random full styles and both tasks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.world import faithfulness as measure
from core.world.detectors import detect_style
from core.world.prose import units
from core.world.styles import ATTRIBUTE_NAMES
from workers.modeling import prose_sources
from workers.modeling.style_corpus import Example, heldout_prose_example

REAL_PARAGRAPHS = Path(__file__).resolve().parents[1] / "tests" / "data" / "real_paragraphs.json"
TARGETS = {"faithfulness": 0.98, "coverage_short": 0.90, "coverage_long": 0.85,
           "no_loops": 0.99, "style": 0.95}  # fmt: skip


@dataclass(frozen=True)
class RestyleScores:
    """Means over one set of outputs (coverage over the outputs of that length only)."""

    count: int
    faithfulness: float
    coverage_short: float
    coverage_long: float
    no_loops: float
    per_attribute: dict[str, float]

    def misses(self) -> list[str]:
        """The targets these scores miss (empty when all are met)."""
        figures = {
            "faithfulness": self.faithfulness,
            "coverage_short": self.coverage_short,
            "coverage_long": self.coverage_long,
            "no_loops": self.no_loops,
            "style": min(self.per_attribute.values()),
        }
        return [name for name, value in figures.items() if value < TARGETS[name]]


def real_paragraphs() -> list[str]:
    """The committed real paragraphs (never in any training corpus)."""
    return list(json.loads(REAL_PARAGRAPHS.read_text()))


def heldout_paragraphs(minimum_units: int = 3) -> list[str]:
    """Held-out prose found on this machine, paragraphs with at least ``minimum_units``."""
    found = prose_sources.collect(heldout=True)
    return [p.text for p in found if len(units(p.text)) >= minimum_units]


def examples(paragraphs: Sequence[str], count: int, seed: int) -> list[Example]:
    """``count`` fully tagged examples over ``paragraphs`` (round robin, random styles)."""
    return [heldout_prose_example(i, paragraphs, seed) for i in range(count)]


def score(examples: Sequence[Example], outputs: Sequence[str]) -> RestyleScores:
    """Faithfulness, coverage (short: the first sentence; long: the whole text), loops and the
    match of every attribute with its tag."""
    faithful, short, long, loops = [], [], [], 0
    hits = dict.fromkeys(ATTRIBUTE_NAMES, 0)
    for example, output in zip(examples, outputs, strict=True):
        source = example.context_text
        faithful.append(measure.faithfulness(output, source))
        if example.style["length"] == "short":
            short.append(measure.coverage(output, measure.first_sentence(source)))
        elif example.style["length"] == "long":
            long.append(measure.coverage(output, source))
        loops += measure.has_loop(output)
        detected = detect_style(output)
        for name in ATTRIBUTE_NAMES:
            hits[name] += detected[name] == example.style[name]
    n = len(examples)
    return RestyleScores(
        n,
        sum(faithful) / n,
        sum(short) / max(1, len(short)),
        sum(long) / max(1, len(long)),
        1 - loops / n,
        {name: value / n for name, value in hits.items()},
    )


def print_scores(title: str, scores: RestyleScores, renderer: RestyleScores | None = None) -> None:
    """The model's scores, and beside each attribute the renderer's own on the same examples
    (``renderer``: what the detectors give the reference answers, the ceiling they allow)."""
    print(title)
    print(f"  faithfulness      {scores.faithfulness:7.1%}  (output content words in the input)")
    print(f"  coverage, short   {scores.coverage_short:7.1%}  (first sentence's content words)")
    print(f"  coverage, long    {scores.coverage_long:7.1%}  (all content words kept)")
    loops = f"; the renderer's own: {renderer.no_loops:.1%}" if renderer else ""
    print(
        f"  no loops          {scores.no_loops:7.1%}  (no 3 words in a row more than twice{loops})"
    )
    for name, value in scores.per_attribute.items():
        ceiling = f"  (the renderer's own: {renderer.per_attribute[name]:.1%})" if renderer else ""
        print(f"  style {name:<11} {value:7.1%}{ceiling}")
