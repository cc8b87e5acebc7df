"""A noisy reader for the learning benchmarks (``--reader-noise p,q``).

The offline backend reads edits with the very detectors that decide whether a simulated user
accepts, so every benchmark's reader is perfect; an instruct model is not. :class:`NoisyReader`
reads as the offline backend does, then, per edit, misses each attribute the edit shows with
probability ``miss`` (p) and, with probability ``invent`` (q), names one attribute the edit does
not show, with a value the revision does not have. Its draws come from its own seeded generator,
so a run is repeatable and every learner gets its own stream.
"""

from __future__ import annotations

import random

from apps.memory.inference import OfflineBackend
from core.world.detectors import detect_style
from core.world.styles import ATTRIBUTES

Noise = tuple[float, float]
"""(p, q): the chance to miss an attribute an edit shows, and to name one it does not show."""


def parse_noise(text: str) -> Noise:
    """``"0.2,0.1"`` as (0.2, 0.1); an ``argparse``-friendly ValueError otherwise."""
    try:
        miss, invent = (float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r}: give p,q, e.g. 0.2,0.1") from None
    if not (0 <= miss <= 1 and 0 <= invent <= 1):
        raise ValueError(f"{text!r}: p and q are probabilities (0 to 1)")
    return miss, invent


class NoisyReader(OfflineBackend):
    """The offline backend with an imperfect reading of each edit (see the module docstring)."""

    def __init__(self, noise: Noise, seed: str, **rule: bool) -> None:
        super().__init__(**rule)
        self.miss, self.invent = noise
        self.rng = random.Random(seed)

    def infer_one(self, original: str, revised: str) -> dict[str, str]:
        shown = super().infer_one(original, revised)
        read = {name: value for name, value in shown.items() if self.rng.random() >= self.miss}
        if self.rng.random() < self.invent:
            revised_style = detect_style(revised)
            unshown = [a for a in ATTRIBUTES if a.name not in shown]
            if unshown:
                attribute = self.rng.choice(unshown)
                wrong = [v for v in attribute.values if v != revised_style[attribute.name]]
                read[attribute.name] = self.rng.choice(wrong)
        return read
