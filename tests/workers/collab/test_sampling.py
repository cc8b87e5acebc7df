"""Bounded, fair, stable subsets of preference pairs (what keeps a CoPL run's cost bounded)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from workers.collab.sampling import fair_subset, share_cap


@dataclass(frozen=True)
class Pair:
    key: str
    user_id: int


def pairs(sizes: dict[int, int]) -> list[Pair]:
    return [Pair(f"edit:{user}-{i}", user) for user, n in sizes.items() for i in range(n)]


def test_share_cap_is_the_largest_fitting_cap() -> None:
    assert share_cap([1, 2, 10, 50], 100) == 50  # everything fits
    assert share_cap([1, 2, 10, 50], 23) == 10  # 1 + 2 + 10 + 10
    assert share_cap([1, 2, 10, 50], 22) == 9  # 1 + 2 + 9 + 9
    assert share_cap([5, 5, 5], 2) == 0


def test_per_user_cap_keeps_every_user_and_at_most_the_cap() -> None:
    items = pairs({1: 3, 2: 40, 3: 1000})
    kept = fair_subset(items, per_user=25)
    assert Counter(p.user_id for p in kept) == {1: 3, 2: 25, 3: 25}
    assert kept == [p for p in items if p in set(kept)]  # the items' order


def test_total_is_shared_evenly_and_the_light_users_keep_all() -> None:
    items = pairs({1: 2, 2: 5, 3: 400, 4: 9000})
    kept = fair_subset(items, per_user=1000, total=300)
    counts = Counter(p.user_id for p in kept)
    assert counts == {1: 2, 2: 5, 3: 146, 4: 146} and len(kept) <= 300


def test_fewer_places_than_users_takes_one_pair_of_some_users() -> None:
    items = pairs({u: 3 for u in range(50)})
    kept = fair_subset(items, total=20)
    assert len(kept) == 20 and len({p.user_id for p in kept}) == 20


def test_the_choice_depends_on_the_keys_not_their_order() -> None:
    items = pairs({1: 30, 2: 500})
    shuffled = items[:]
    random.Random(0).shuffle(shuffled)
    assert set(fair_subset(items, per_user=10, total=15)) == set(
        fair_subset(shuffled, per_user=10, total=15)
    )
    assert fair_subset(items) == items and fair_subset(items, per_user=0, total=0) == items
