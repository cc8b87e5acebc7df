"""Fit a user's η per preference vector from their feedback (no gradient step).

Evidence per dimension, from the style detectors (surface rules that apply to any text):
- an edit that moves the text from the negative to the positive pole counts +1, the reverse −1;
- a liked output at a pole counts +1/2 for that pole, a disliked one −1/2 (and the opposite for
  the other pole).
η is the mean evidence, scaled to ``ATTUNE_MAX_FITTED_ETA``; a dimension with fewer than
``MIN_SIGNALS`` signals keeps the user's η unchanged. A value the user set themselves is never
overwritten.
"""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings

from apps.accounts.models import User
from apps.adapters import selectors, services
from apps.adapters.models import PreferenceCoefficient
from apps.feedback import selectors as feedback
from core.dimensions import Dimension, dimension
from core.world.detectors import DETECTORS

MIN_SIGNALS = 3


def _pole(dim: Dimension, text: str) -> int:
    value = DETECTORS[dim.attribute](text)
    return 1 if value == dim.positive else -1 if value == dim.negative else 0


def evidence(user: User, dims: list[Dimension]) -> dict[str, list[float]]:
    """Signals in [-1, 1] per dimension name, from the user's edits and ratings."""
    signals: dict[str, list[float]] = defaultdict(list)
    for pair in feedback.edit_pairs(user=user):
        for dim in dims:
            moved = _pole(dim, pair.chosen) - _pole(dim, pair.rejected)
            if moved:
                signals[dim.name].append(1.0 if moved > 0 else -1.0)
    for thumb in feedback.thumbs(user=user):
        for dim in dims:
            if pole := _pole(dim, thumb.completion):
                signals[dim.name].append(0.5 * pole * (1 if thumb.label else -1))
    return signals


def fit_etas(user: User) -> dict[str, float]:
    """Update the user's fitted η from their feedback; returns the η that were fitted."""
    names = list(selectors.active_vectors().values_list("name", flat=True))
    dims = [dimension(name) for name in names]
    user_set = set(
        PreferenceCoefficient.objects.filter(
            user=user, origin=PreferenceCoefficient.Origin.USER
        ).values_list("vector_name", flat=True)
    )
    fitted = {}
    for name, values in evidence(user, dims).items():
        if name in user_set or len(values) < MIN_SIGNALS:
            continue
        mean = sum(values) / len(values)
        fitted[name] = round(mean * settings.ATTUNE_MAX_FITTED_ETA, 3)
    if fitted:
        services.set_etas(user, fitted, origin=PreferenceCoefficient.Origin.FITTED)
    return fitted


def starting_etas(user: User, names: set[str]) -> dict[str, float]:
    """The collaborative starting η (apps.collab: from the user's nearest CoPL neighbours) for
    those of ``names`` the user has too little evidence to fit (fewer than ``MIN_SIGNALS``
    signals); empty without an active CoPL version or an embedding for the user."""
    from apps.collab.selectors import starting_etas as collab_starting_etas

    start = {n: eta for n, eta in collab_starting_etas(user).items() if n in names}
    if not start:
        return {}
    signals = evidence(user, [dimension(name) for name in start])
    return {n: eta for n, eta in start.items() if len(signals.get(n, ())) < MIN_SIGNALS}
