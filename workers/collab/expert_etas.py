"""From the reward model's per-attribute preferences to η per preference vector (torch-free).

``workers.collab.uses.starting_eta`` gives, for every non-default attribute value
(``format=bullets``), ``eta_max * (2P - 1)`` where P is how often the reward prefers a text with
that value flipped in over the neutral rendering. A preference vector is a dimension with two
poles (``format-bullets-vs-prose``); its η is the mean of the positive pole's value and the
negated negative pole's value, counting only poles that are not the neutral default (whose value
is 0 by construction).
"""

from __future__ import annotations

from collections.abc import Mapping

from core.dimensions import OFFLINE_DIMENSIONS, Dimension
from core.world.styles import attribute


def dimension_eta(dim: Dimension, etas: Mapping[str, float]) -> float:
    default = attribute(dim.attribute).default
    parts = []
    if dim.positive != default:
        parts.append(etas.get(f"{dim.attribute}={dim.positive}", 0.0))
    if dim.negative != default:
        parts.append(-etas.get(f"{dim.attribute}={dim.negative}", 0.0))
    return sum(parts) / len(parts) if parts else 0.0


def dimension_etas(etas: Mapping[str, float]) -> dict[str, float]:
    """η per offline preference-vector name from ``starting_eta``'s ``name=value`` keys."""
    return {dim.name: round(dimension_eta(dim, etas), 4) for dim in OFFLINE_DIMENSIONS}
