"""The UF-P-like generator: groups disagree on every pair, 8-16 pairs per user, 10% unseen; the
harder data add a group-shared taste over specific texts."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from dataclasses import asdict, replace

import pytest

from core.world.detectors import detect_style
from workers.collab.ufp import (
    UFPConfig,
    apply_shared_taste,
    generate_ufp,
    group_name,
    make_pool,
)

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


# -- the harder data: a group-shared taste over specific texts ------------------------------------
TASTE = UFPConfig(n_users=80, pool_pairs=60, test_pool_pairs=30, seed=3, shared_taste=0.5)


def test_default_data_are_unchanged_bit_for_bit() -> None:
    config = UFPConfig(n_users=20, pool_pairs=30, test_pool_pairs=20, seed=5)
    pairs = generate_ufp(config)
    digest = hashlib.sha256(json.dumps([asdict(p) for p in pairs]).encode()).hexdigest()
    # the digest of this config's data before the shared taste existed
    assert digest == "0cb1127915098407658fa4a686a720a90bd82f35ff0d09989605719974a08221"
    assert generate_ufp(replace(config, shared_taste=0.0, test_from_train_pool=False)) == pairs


def test_the_shared_taste_share_is_honoured_per_group() -> None:
    rng = random.Random(0)
    pool = make_pool(rng, SMALL, 40, seed_base=0)
    names = [group_name(g) for g in SMALL.groups]
    for share in (0.0, 0.25, 0.5, 1.0):
        tasted = apply_shared_taste(pool, names, share, seed=1)
        assert [(t.first, t.second) for t in tasted] == [(p.first, p.second) for p in pool]
        for name in names:
            assert sum(name in t.taste for t in tasted) == round(share * len(pool))
            # where the attribute decides, the label is the attribute's
            assert all(
                t.prefers_first[name] == p.prefers_first[name]
                for t, p in zip(tasted, pool, strict=True)
                if name not in t.taste
            )
    # the taste overrules the attribute on about half of the tasted comparisons
    tasted = apply_shared_taste(pool, names, 1.0, seed=1)
    flipped = sum(
        t.prefers_first[n] != p.prefers_first[n]
        for t, p in zip(tasted, pool, strict=True)
        for n in names
    )
    assert 0.3 < flipped / (len(pool) * len(names)) < 0.7


def test_a_group_agrees_on_each_pair_and_tests_come_from_the_train_pool() -> None:
    pairs = generate_ufp(TASTE)
    label: dict[tuple[str, frozenset[str]], str] = {}
    against_attribute = Counter()
    for pair in pairs:
        key = (pair.group, frozenset((pair.chosen, pair.rejected)))
        assert label.setdefault(key, pair.chosen) == pair.chosen  # the whole group agrees
        name, value = pair.group.split("=")
        against_attribute[pair.group] += detect_style(pair.chosen)[name] != value
    per_group = Counter(p.group for p in pairs)
    for group, count in per_group.items():  # about shared_taste / 2 of the labels overrule
        assert 0.1 < against_attribute[group] / count < 0.4
    train = {t for p in pairs if p.split == "train" for t in (p.chosen, p.rejected)}
    tests = [p for p in pairs if p.split in ("test", "unseen_test")]
    assert tests and sum(p.chosen in train and p.rejected in train for p in tests) > 0.9 * len(
        tests
    )
    own: dict[str, set[frozenset[str]]] = defaultdict(set)
    for pair in pairs:
        if pair.split in ("train", "unseen_train"):
            own[pair.user_id].add(frozenset((pair.chosen, pair.rejected)))
    assert all(frozenset((p.chosen, p.rejected)) not in own[p.user_id] for p in tests)
    with pytest.raises(ValueError):
        UFPConfig(shared_taste=1.5)
