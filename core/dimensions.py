"""Preference dimensions (torch-free): a style attribute and its two poles.

The web side lists and validates them; the worker fits a preference vector for each.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.world.styles import attribute


@dataclass(frozen=True)
class Dimension:
    """A preference dimension: an attribute and the values at its positive and negative poles."""

    attribute: str
    positive: str
    negative: str

    @property
    def name(self) -> str:
        return f"{self.attribute}-{self.positive}-vs-{self.negative}"

    def __post_init__(self) -> None:
        values = attribute(self.attribute).values
        if self.positive not in values or self.negative not in values:
            raise ValueError(f"{self.attribute} has values {values}")
        if self.positive == self.negative:
            raise ValueError("a dimension needs two different poles")


OFFLINE_DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("length", "short", "long"),
    Dimension("format", "bullets", "prose"),
    Dimension("tone", "casual", "formal"),
    Dimension("emoji", "yes", "no"),
    Dimension("greeting", "yes", "no"),
    Dimension("person", "second", "third"),
    Dimension("question", "yes", "no"),
)


def dimension(name: str) -> Dimension:
    for dim in OFFLINE_DIMENSIONS:
        if dim.name == name:
            return dim
    raise KeyError(f"unknown preference dimension {name!r}")


DIMENSION_NAMES: frozenset[str] = frozenset(d.name for d in OFFLINE_DIMENSIONS)
