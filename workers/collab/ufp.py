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
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Comparison:
    """Two renderings of one prompt and, per group name, whether that group prefers ``first``."""

    prompt: str
    first: str
    second: str
    first_style: Style
    second_style: Style
    prefers_first: dict[str, bool]


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
    test_pool = make_pool(rng, config, config.test_pool_pairs, seed_base=10**7)
    names = [group_name(g) for g in config.groups]
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
        if index in unseen:
            few = rng.sample(train_pool, config.unseen_train_pairs)
            rest = rng.sample(test_pool, count - config.unseen_train_pairs)
            pairs += [_as_pair(item, user, group, "unseen_train") for item in few]
            pairs += [_as_pair(item, user, group, "unseen_test") for item in rest]
        else:
            pairs += [_as_pair(i, user, group, "train") for i in rng.sample(train_pool, count)]
            tests = rng.sample(test_pool, config.test_pairs)
            pairs += [_as_pair(item, user, group, "test") for item in tests]
    return pairs
