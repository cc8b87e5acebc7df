"""UF-P-like preference data from the offline style world (torch-free, seeded).

As in UltraFeedback-P, users fall into groups and each group prefers one attribute: here a style
attribute value such as ``format=bullets`` or ``emoji=yes``. A comparison renders one world context
twice for one task: both renderings share every style attribute except the groups' attributes, and
on each of those exactly one rendering has the value a group asks for, so every group has a strict
preference. Only comparisons on which the groups disagree are kept.

Comparisons come from two shared pools: the *train pool* (users overlap on it, which is what the
collaborative graph needs) and the *test pool* (fresh contexts, so test accuracy measures how a
reward generalizes to new texts). Seen users rate 8-16 train-pool pairs (``train``) and
``test_pairs`` test-pool pairs (``test``). About 10% of users are unseen: of their 8-16 pairs, 4
come from the train pool (``unseen_train``, the few ratings a new user gives) and the rest from
the test pool (``unseen_test``).

**Harder data** (``shared_taste`` > 0): on that share of the train pool's comparisons (drawn per
group, exactly ``round(shared_taste * pool_pairs)`` of them), a group's label is decided not by
its attribute but by a fixed random taste of the group over the specific response texts (a
random score per text, the higher-scored text chosen): the whole group agrees on such a pair for
reasons no single attribute explains, so only who-chose-what (the graph) can learn it. Test pairs
then come from the train pool, as in UF-P (``test_from_train_pool``, on by default with a
shared taste): each user's test pairs are other pool comparisons than their own training pairs,
rated in training by other users. At ``shared_taste=0`` (the default) the data are today's, bit
for bit; the taste has its own random stream.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from core.world.renderer import TASKS, render
from core.world.sources import SOURCE_NAMES, SOURCES, make_context
from core.world.styles import Style, attribute, random_style
from workers.collab.data import PreferencePair, Split

DEFAULT_GROUPS: tuple[tuple[str, str], ...] = (
    ("format", "bullets"),
    ("tone", "casual"),
    ("emoji", "yes"),
    ("length", "short"),
)
"""Four groups, each preferring one attribute value (as UF-P-4 has four attribute groups)."""

_INSTRUCTIONS: dict[str, str] = {
    "summarize": "Summarize the {label} below.",
    "email": "Write an email to the team about the {label} below.",
}


@dataclass(frozen=True)
class UFPConfig:
    """Sizes of a generated dataset. ``groups`` are (attribute, preferred value) pairs."""

    n_users: int = 300
    groups: tuple[tuple[str, str], ...] = DEFAULT_GROUPS
    min_pairs: int = 8
    max_pairs: int = 16
    test_pairs: int = 4
    unseen_fraction: float = 0.1
    unseen_train_pairs: int = 4
    pool_pairs: int = 400
    test_pool_pairs: int = 150
    tasks: tuple[str, ...] = TASKS
    seed: int = 0
    shared_taste: float = 0.0
    """Share of the train pool on which each group's label is its random taste over texts."""
    test_from_train_pool: bool | None = None
    """Draw test pairs from the train pool (None: exactly when ``shared_taste`` > 0)."""

    @property
    def tests_from_train_pool(self) -> bool:
        if self.test_from_train_pool is None:
            return self.shared_taste > 0
        return self.test_from_train_pool

    def __post_init__(self) -> None:
        if len(self.groups) < 2:
            raise ValueError("UF-P data needs at least two groups")
        for name, value in self.groups:
            if value not in attribute(name).values:
                raise ValueError(f"unknown value {value!r} for style attribute {name!r}")
        if not 1 <= self.min_pairs <= self.max_pairs:
            raise ValueError("need 1 <= min_pairs <= max_pairs")
        if self.unseen_train_pairs >= self.min_pairs:
            raise ValueError("unseen_train_pairs must leave unseen users some test pairs")
        if self.pool_pairs < self.max_pairs or self.test_pool_pairs < max(
            self.test_pairs, self.max_pairs - self.unseen_train_pairs
        ):
            raise ValueError("the pools are too small for the number of pairs per user")
        if not 0.0 <= self.unseen_fraction < 1.0:
            raise ValueError("unseen_fraction must be in [0, 1)")
        if not 0.0 <= self.shared_taste <= 1.0:
            raise ValueError("shared_taste must be in [0, 1]")
        if self.tests_from_train_pool and self.pool_pairs < self.max_pairs + self.test_pairs:
            raise ValueError("the train pool is too small to also give test pairs")


@dataclass(frozen=True)
class Comparison:
    """Two renderings of one prompt and, per group name, whether that group prefers ``first``."""

    prompt: str
    first: str
    second: str
    first_style: Style
    second_style: Style
    prefers_first: dict[str, bool]
    taste: frozenset[str] = field(default_factory=frozenset)
    """The groups whose label on this comparison is their shared taste, not their attribute."""


def group_name(group: tuple[str, str]) -> str:
    """The name of a group, its attribute tag: ``format=bullets``."""
    return f"{group[0]}={group[1]}"


def _value_options(groups: Sequence[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Per group attribute, the ordered value pairs (a, b) on which every group of that attribute
    finds its value in exactly one of the two renderings."""
    options: dict[str, list[tuple[str, str]]] = {}
    for name in dict.fromkeys(g[0] for g in groups):
        wanted = [v for a, v in groups if a == name]
        values = attribute(name).values
        options[name] = [
            (a, b)
            for a, b in itertools.permutations(values, 2)
            if all((a == v) != (b == v) for v in wanted)
        ]
        if not options[name]:
            raise ValueError(f"the groups on {name!r} cannot all have a strict preference")
    return options


def make_comparison(
    rng: random.Random, groups: Sequence[tuple[str, str]], tasks: Sequence[str], seed_base: int
) -> Comparison:
    """Draw one comparison on which the groups disagree (rejection sampling)."""
    options = _value_options(groups)
    while True:
        source = rng.choice(SOURCE_NAMES)
        context = make_context(source, seed_base + rng.randrange(10**6))
        task = rng.choice(list(tasks))
        first = random_style(rng)
        second = dict(first)
        for name, pairs in options.items():
            first[name], second[name] = rng.choice(pairs)
        prefers = {group_name(g): first[g[0]] == g[1] for g in groups}
        if len(set(prefers.values())) < 2:
            continue
        prompt = _INSTRUCTIONS.get(task, "Write about the {label} below.").format(
            label=SOURCES[source].label
        )
        a, b = render(context, task, first), render(context, task, second)
        if a == b:
            continue
        return Comparison(f"{prompt}\n\n{context.text}", a, b, first, second, prefers)


def make_pool(rng: random.Random, config: UFPConfig, size: int, seed_base: int) -> list[Comparison]:
    """``size`` comparisons with distinct texts."""
    pool: list[Comparison] = []
    seen: set[str] = set()
    while len(pool) < size:
        item = make_comparison(rng, config.groups, config.tasks, seed_base)
        if item.first in seen or item.second in seen:
            continue
        seen.update((item.first, item.second))
        pool.append(item)
    return pool


def apply_shared_taste(
    pool: Sequence[Comparison], groups: Sequence[str], share: float, seed: int
) -> list[Comparison]:
    """``pool`` relabelled by each group's shared taste on ``round(share * len(pool))`` of its
    comparisons (chosen per group): a fixed random score per (group, text) decides, the
    higher-scored text is chosen. Seeded by ``seed`` alone (its own random stream)."""
    count = round(share * len(pool))
    if count == 0:
        return list(pool)
    rng = random.Random(f"ufp-taste:{seed}")
    labels = [dict(item.prefers_first) for item in pool]
    tasted: list[set[str]] = [set() for _ in pool]
    for group in groups:
        for i in sorted(rng.sample(range(len(pool)), count)):
            first, second = rng.random(), rng.random()
            labels[i][group] = first > second
            tasted[i].add(group)
    return [
        replace(item, prefers_first=labels[i], taste=frozenset(tasted[i]))
        for i, item in enumerate(pool)
    ]


def _as_pair(item: Comparison, user: str, group: str, split: Split) -> PreferencePair:
    chosen, rejected = (
        (item.first, item.second) if item.prefers_first[group] else (item.second, item.first)
    )
    return PreferencePair(user, item.prompt, chosen, rejected, split, group)


def generate_ufp(config: UFPConfig | None = None) -> list[PreferencePair]:
    """A UF-P-like dataset: users in balanced groups, every pair labelled by the user's group.

    The same config (seed included) always gives the same pairs in the same order.
    """
    config = config or UFPConfig()
    rng = random.Random(f"ufp:{config.seed}")
    # Context seeds of the two pools come from disjoint ranges, so test texts are new texts.
    train_pool = make_pool(rng, config, config.pool_pairs, seed_base=0)
    names = [group_name(g) for g in config.groups]
    train_pool = apply_shared_taste(train_pool, names, config.shared_taste, config.seed)
    from_train = config.tests_from_train_pool
    test_pool = (
        [] if from_train else make_pool(rng, config, config.test_pool_pairs, seed_base=10**7)
    )
    groups = [names[i % len(names)] for i in range(config.n_users)]
    rng.shuffle(groups)
    n_unseen = round(config.n_users * config.unseen_fraction)
    # Unseen users drawn evenly across groups: every k-th user of each group, up to n_unseen.
    by_group = {name: [i for i, g in enumerate(groups) if g == name] for name in names}
    order = [
        i for column in itertools.zip_longest(*by_group.values()) for i in column if i is not None
    ]
    unseen = set(order[:n_unseen])
    pairs: list[PreferencePair] = []
    for index, group in enumerate(groups):
        user = f"u{index:04d}"
        count = rng.randint(config.min_pairs, config.max_pairs)
        if from_train:
            pairs += _from_train_pool(rng, config, train_pool, user, group, count, index in unseen)
        elif index in unseen:
            few = rng.sample(train_pool, config.unseen_train_pairs)
            rest = rng.sample(test_pool, count - config.unseen_train_pairs)
            pairs += [_as_pair(item, user, group, "unseen_train") for item in few]
            pairs += [_as_pair(item, user, group, "unseen_test") for item in rest]
        else:
            pairs += [_as_pair(i, user, group, "train") for i in rng.sample(train_pool, count)]
            tests = rng.sample(test_pool, config.test_pairs)
            pairs += [_as_pair(item, user, group, "test") for item in tests]
    return pairs


def _from_train_pool(
    rng: random.Random,
    config: UFPConfig,
    pool: Sequence[Comparison],
    user: str,
    group: str,
    count: int,
    unseen: bool,
) -> list[PreferencePair]:
    """One user's pairs when tests come from the train pool: distinct pool comparisons, the
    first ones to learn from and the rest to test on."""
    if unseen:
        items = rng.sample(list(pool), count)
        few = config.unseen_train_pairs
        return [_as_pair(item, user, group, "unseen_train") for item in items[:few]] + [
            _as_pair(item, user, group, "unseen_test") for item in items[few:]
        ]
    items = rng.sample(list(pool), count + config.test_pairs)
    return [_as_pair(item, user, group, "train") for item in items[:count]] + [
        _as_pair(item, user, group, "test") for item in items[count:]
    ]
