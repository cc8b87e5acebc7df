"""The UF-P-like generator: groups disagree on every pair, 8-16 pairs per user, 10% unseen."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from core.world.detectors import detect_style
from workers.collab.ufp import UFPConfig, generate_ufp, group_name

SMALL = UFPConfig(n_users=60, pool_pairs=60, test_pool_pairs=30, seed=3)


@pytest.fixture(scope="module")
def pairs() -> list:
    return generate_ufp(SMALL)


def test_is_deterministic(pairs: list) -> None:
    assert generate_ufp(SMALL) == pairs
    assert generate_ufp(UFPConfig(n_users=60, pool_pairs=60, test_pool_pairs=30, seed=4)) != pairs


def test_pairs_per_user_and_unseen_share(pairs: list) -> None:
    splits: dict[str, Counter[str]] = defaultdict(Counter)
    for pair in pairs:
        splits[pair.user_id][pair.split] += 1
    unseen = [u for u, c in splits.items() if c["unseen_train"]]
    assert len(splits) == SMALL.n_users
    assert len(unseen) == round(0.1 * SMALL.n_users)
    for user, counts in splits.items():
        if user in unseen:
            assert counts["unseen_train"] == 4 and not counts["train"]
            assert 8 <= counts["unseen_train"] + counts["unseen_test"] <= 16
        else:
            assert 8 <= counts["train"] <= 16 and counts["test"] == SMALL.test_pairs


def test_groups_are_balanced_and_unseen_users_spread(pairs: list) -> None:
    groups = {p.user_id: p.group for p in pairs}
    sizes = Counter(groups.values())
    assert set(sizes) == {group_name(g) for g in SMALL.groups}
    assert max(sizes.values()) - min(sizes.values()) <= 1
    unseen_groups = Counter(groups[p.user_id] for p in pairs if p.split == "unseen_train")
    assert len(unseen_groups) == len(SMALL.groups)


def test_chosen_has_the_group_value_and_another_group_disagrees(pairs: list) -> None:
    for pair in pairs:
        chosen, rejected = detect_style(pair.chosen), detect_style(pair.rejected)
        name, value = pair.group.split("=")
        assert chosen[name] == value != rejected[name]
        others = [g for g in SMALL.groups if group_name(g) != pair.group]
        assert any(rejected[a] == v != chosen[a] for a, v in others), pair


def test_test_texts_are_new(pairs: list) -> None:
    train = {
        t for p in pairs if p.split in ("train", "unseen_train") for t in (p.chosen, p.rejected)
    }
    test = {t for p in pairs if p.split in ("test", "unseen_test") for t in (p.chosen, p.rejected)}
    assert not train & test


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError):
        UFPConfig(groups=(("format", "bullets"),))
    with pytest.raises(ValueError):
        UFPConfig(groups=(("format", "bullets"), ("tone", "loud")))
    with pytest.raises(ValueError):
        UFPConfig(pool_pairs=4)
