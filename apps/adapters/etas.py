"""Fit a user's η per preference vector from their feedback (no gradient step).

Evidence per dimension, from the style detectors (surface rules that apply to any text):
- an edit that moves the text from the negative to the positive pole counts +1, the reverse −1;
- a liked output at a pole counts +1/2 for that pole, a disliked one −1/2 (and the opposite for
  the other pole).
η is the mean evidence, scaled to ``ATTUNE_MAX_FITTED_ETA``; a dimension with fewer than
``MIN_SIGNALS`` signals keeps the user's η unchanged. A value the user set themselves is never
overwritten.

The evidence is kept as running sums per user and dimension (:class:`EtaEvidence`: the sum of
the signals and their count, for every dimension, so changing the active vectors needs nothing),
so reading it costs one row whatever the user's history. The feedback services keep the sums
current in the transaction that stores, changes or deletes an edit or rating: :func:`hold` locks
the user's row first (same-user writers, and the computation below, take turns), :meth:`Tally.save`
writes the change. A user whose row has no sums (feedback from before the table, a bulk load, a
row deleted with the user's data) gets them computed once from the whole history
(:func:`signal_sums`) and stored. Feedback written around the services (fixtures, ``COPY``) is
counted only by that computation: clear the row's ``sums`` after such a load.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction

from apps.accounts.models import User
from apps.adapters import selectors, services
from apps.adapters.models import EtaEvidence, PreferenceCoefficient
from apps.feedback import selectors as feedback
from core.dimensions import OFFLINE_DIMENSIONS, Dimension
from core.world.detectors import DETECTORS

MIN_SIGNALS = 3
Sums = dict[str, list[float]]  # dimension name -> [sum of signals, number of signals]


def _pole(dim: Dimension, text: str) -> int:
    value = DETECTORS[dim.attribute](text)
    return 1 if value == dim.positive else -1 if value == dim.negative else 0


def pair_signals(
    chosen: str, rejected: str, dims: tuple[Dimension, ...] = OFFLINE_DIMENSIONS
) -> dict[str, float]:
    """The signal of an edit (``chosen`` is the edited text) per dimension it moved."""
    signals = {}
    for dim in dims:
        if moved := _pole(dim, chosen) - _pole(dim, rejected):
            signals[dim.name] = 1.0 if moved > 0 else -1.0
    return signals


def thumb_signals(
    completion: str, label: bool | None, dims: tuple[Dimension, ...] = OFFLINE_DIMENSIONS
) -> dict[str, float]:
    """The signal of a rated output per dimension it sits at a pole of (none without a label)."""
    if label is None:
        return {}
    sign = 1 if label else -1
    return {dim.name: 0.5 * pole * sign for dim in dims if (pole := _pole(dim, completion))}


def evidence(user: User, dims: list[Dimension]) -> dict[str, list[float]]:
    """Signals in [-1, 1] per dimension name, from the user's whole history of edits and ratings
    (what the running sums stand for)."""
    signals: dict[str, list[float]] = defaultdict(list)
    for pair in feedback.edit_pairs(user=user):
        for name, value in pair_signals(pair.chosen, pair.rejected, tuple(dims)).items():
            signals[name].append(value)
    for thumb in feedback.thumbs(user=user):
        for name, value in thumb_signals(thumb.completion, thumb.label, tuple(dims)).items():
            signals[name].append(value)
    return signals


def _complete(sums: Sums | None) -> bool:
    return sums is not None and all(dim.name in sums for dim in OFFLINE_DIMENSIONS)


_TABLE = EtaEvidence._meta.db_table
# Locks the user's row (a row lock writes no new row version); when there is none yet, one is
# inserted (a concurrent insert makes this wait for it) and locked.
_LOCK = f"SELECT sums FROM {_TABLE} WHERE user_id = %s FOR UPDATE"
_CREATE = f"INSERT INTO {_TABLE} (user_id, sums) VALUES (%s, NULL) ON CONFLICT (user_id) DO NOTHING"


@dataclass
class Tally:
    """A change of one user's evidence within one write; kept only once the sums exist."""

    user_id: int
    sums: Sums | None
    changed: bool = field(default=False)

    @property
    def counting(self) -> bool:
        return _complete(self.sums)

    def add(self, signals: Mapping[str, float], sign: int = 1) -> None:
        if not self.counting or not signals:
            return
        assert self.sums is not None
        for name, value in signals.items():
            total, count = self.sums[name]
            self.sums[name] = [total + sign * value, int(count) + sign]
        self.changed = True

    def pair(self, chosen: str, rejected: str, sign: int = 1) -> None:
        """Count (``sign`` 1) or take back (−1) an edit that changed ``rejected`` into
        ``chosen``."""
        if self.counting and chosen != rejected:
            self.add(pair_signals(chosen, rejected), sign)

    def thumb(self, completion: str, label: bool | None, sign: int = 1) -> None:
        """Count or take back a rating with KTO ``label`` of ``completion``."""
        if self.counting and label is not None:
            self.add(thumb_signals(completion, label), sign)

    def save(self) -> None:
        if self.changed:
            EtaEvidence.objects.filter(user_id=self.user_id).update(sums=self.sums)
            self.changed = False


def hold(user_id: int) -> Tally:
    """Lock the user's evidence for the current transaction (the row is created when missing);
    call it first in the transaction that writes their feedback, then :meth:`Tally.save`."""
    if not connection.in_atomic_block:
        raise RuntimeError("etas.hold needs a transaction")
    with connection.cursor() as cursor:
        cursor.execute(_LOCK, [user_id])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(_CREATE, [user_id])
            cursor.execute(_LOCK, [user_id])
            row = cursor.fetchone()
    sums = row[0]
    return Tally(user_id, json.loads(sums) if isinstance(sums, str) else sums)


def sums_from_history(user: User) -> Sums:
    """The running sums recomputed from the user's whole history (every dimension)."""
    signals = evidence(user, list(OFFLINE_DIMENSIONS))
    return {d.name: [sum(signals[d.name]), len(signals[d.name])] for d in OFFLINE_DIMENSIONS}


def signal_sums(user: User) -> dict[str, tuple[float, int]]:
    """The user's evidence: (sum, count) of the signals per dimension name. One read; the first
    for a user computes it from their history and stores it."""
    sums = EtaEvidence.objects.filter(user=user).values_list("sums", flat=True).first()
    if not _complete(sums):
        with transaction.atomic():
            tally = hold(user.pk)
            sums = tally.sums
            if not _complete(sums):  # else another process computed it meanwhile
                sums = sums_from_history(user)
                EtaEvidence.objects.filter(user=user).update(sums=sums)
    return {name: (float(total), int(count)) for name, (total, count) in sums.items()}


def fit_etas(user: User) -> dict[str, float]:
    """Update the user's fitted η from their feedback; returns the η that were fitted."""
    names = list(selectors.active_vectors().values_list("name", flat=True))
    user_set = set(
        PreferenceCoefficient.objects.filter(
            user=user, origin=PreferenceCoefficient.Origin.USER
        ).values_list("vector_name", flat=True)
    )
    sums = signal_sums(user)
    fitted = {}
    for name in names:
        total, count = sums.get(name, (0.0, 0))
        if name in user_set or count < MIN_SIGNALS:
            continue
        fitted[name] = round(total / count * settings.ATTUNE_MAX_FITTED_ETA, 3)
    if fitted:
        services.set_etas(user, fitted, origin=PreferenceCoefficient.Origin.FITTED)
    return fitted


def starting_etas(user: User, names: set[str]) -> dict[str, float]:
    """The collaborative starting η (apps.collab: from the user's nearest CoPL neighbours) for
    those of ``names`` the user has too little evidence to fit (fewer than ``MIN_SIGNALS``
    signals); empty without an active CoPL version or an embedding for the user. The evidence
    is read first: a user with enough of it for every name needs no neighbours."""
    sums = signal_sums(user)
    thin = {name for name in names if sums.get(name, (0.0, 0))[1] < MIN_SIGNALS}
    if not thin:
        return {}
    from apps.collab.selectors import starting_etas as collab_starting_etas

    return {n: eta for n, eta in collab_starting_etas(user).items() if n in thin}
