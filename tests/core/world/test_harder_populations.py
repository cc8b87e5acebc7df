"""Harder simulated populations: disagreeing, sparse and indifferent people, from a seed."""

from __future__ import annotations

import json

import pytest

from core.world.harder_populations import harder_population, population_json
from core.world.simulated_users import load_population
from core.world.styles import attribute


def test_the_same_seed_gives_the_same_people_and_another_seed_others():
    assert harder_population(3) == harder_population(3)
    assert harder_population(3) != harder_population(4)


@pytest.mark.parametrize("seed", range(5))
def test_each_kind_is_what_it_says(seed):
    people = {u.user_id: u for u in harder_population(seed)}
    disagreeing = [u for name, u in people.items() if name.startswith("disagreeing")]
    assert len(disagreeing) == 4
    for person in disagreeing:
        names = {name for style in person.preferences.values() for name in style}
        assert 2 <= len(names) <= 4
        for name in names:  # every attribute takes at least two values over the sources
            assert len({style[name] for style in person.preferences.values()}) > 1
    for person in (u for name, u in people.items() if name.startswith("sparse")):
        assert 2 <= len(person.preferences) <= 4
        (style,) = {tuple(s.items()) for s in person.preferences.values()}
        assert 1 <= len(style) <= 2
        assert all(value != attribute(name).default for name, value in style)
    assert people["indifferent-1"].preferences == {}


def test_the_json_loads_as_a_population(tmp_path):
    path = tmp_path / "harder.json"
    path.write_text(json.dumps(population_json(7)))
    assert load_population(path) == harder_population(7)
    with pytest.raises(ValueError, match="unknown kind"):
        population_json(0, {"grumpy": 1})
