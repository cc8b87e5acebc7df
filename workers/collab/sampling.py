"""Bounded, fair and stable subsets of everyone's preference pairs, so a CoPL run's cost stays
bounded at any size (pure Python: no torch, no Django).

A run over thousands of users cannot afford every pair of its heaviest users (a person with 50,000
interactions has thousands of pairs, where a 64-dimensional embedding learns little after the
first few hundred) nor every pair in the reward model (each text costs a backbone pass and its
cached hidden states). :func:`fair_subset` keeps at most ``per_user`` pairs of each user and at most
``total`` pairs in all, as evenly across users as the budget allows (the lightest users keep all
of theirs). Which pairs a user keeps depends only on their keys' SHA-256, never on order, so a
retried run keeps the same pairs, as ``apps.feedback.selectors.split_heldout`` holds out the same.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol, TypeVar


class Keyed(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def user_id(self) -> int: ...


Item = TypeVar("Item", bound=Keyed)


def _rank(item: Keyed) -> str:
    return hashlib.sha256(item.key.encode()).hexdigest()


def share_cap(sizes: Sequence[int], total: int) -> int:
    """The largest per-user cap ``c`` with ``sum(min(n, c)) <= total`` (water-filling)."""
    if sum(sizes) <= total:
        return max(sizes, default=0)
    ordered = sorted(sizes)
    used = 0
    for i, size in enumerate(ordered):
        left = len(ordered) - i  # users with at least ``size`` items
        if used + size * left > total:
            return (total - used) // left
        used += size
    return ordered[-1]


def fair_subset(
    items: Sequence[Item], per_user: int | None = None, total: int | None = None
) -> list[Item]:
    """At most ``per_user`` items of each user and ``total`` in all (None or <= 0: no limit),
    spread evenly over users; each user's lowest-hash items, in ``items``' order. Every user
    keeps an item whenever ``total`` allows one each (``per_user`` alone never drops a user)."""
    by_user: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        by_user[item.user_id].append(item)
    cap = max((len(v) for v in by_user.values()), default=0)
    if per_user is not None and per_user > 0:
        cap = min(cap, per_user)
    if total is not None and total > 0:
        cap = min(cap, share_cap([len(v) for v in by_user.values()], total))
    kept: set[str] = set()
    if cap == 0:  # fewer places than users: one item each of the users whose best hash is lowest
        firsts = sorted((min(v, key=_rank) for v in by_user.values()), key=_rank)
        kept.update(i.key for i in firsts[:total])
    for user_items in by_user.values() if cap else ():
        if len(user_items) <= cap:
            kept.update(i.key for i in user_items)
        else:
            kept.update(i.key for i in sorted(user_items, key=_rank)[:cap])
    if len(kept) == len(items):
        return list(items)
    return [i for i in items if i.key in kept]
