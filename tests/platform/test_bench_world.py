"""``bench world``'s check of every full style: each style once per source, judged as a user who
wants it."""

from __future__ import annotations

from bench.world import every_style, needs_edit, population_cells
from core.world.renderer import render
from core.world.simulated_users import load_population
from core.world.sources import SOURCE_NAMES
from core.world.styles import ATTRIBUTE_NAMES


def test_every_full_style_is_asked_once_per_source_on_a_held_out_context() -> None:
    cells = every_style(seed=0)
    assert all(e.tags == e.style and e.context is not None for e in cells)
    asked = {(e.context.source, *(e.style[name] for name in ATTRIBUTE_NAMES)) for e in cells}
    assert len(cells) == len(asked) == len(SOURCE_NAMES) * 3 * 2**6
    assert all(e.context.seed % 2 == 1 for e in cells)  # held out: training sees even seeds
    assert len({e.context.seed for e in cells}) > 1000  # contexts differ from cell to cell


def test_an_answer_needs_an_edit_when_an_attribute_or_a_kept_fact_is_off() -> None:
    cell = next(
        e
        for e in every_style(seed=0)
        if e.style["length"] == "long" and e.style["format"] == "bullets"
    )
    assert not needs_edit(cell, cell.response)  # the renderer's own answer
    items = cell.response.split("\n- ")
    assert needs_edit(cell, "\n- ".join(items[:-2] + items[-1:]))  # a kept fact dropped
    assert needs_edit(cell, cell.response.replace("\n- ", " ").replace("- ", ""))  # prose


def test_the_population_is_asked_as_the_oracle_asks_on_every_source() -> None:
    cells = population_cells(seed=0, per_source=2)
    users = load_population()
    assert len(cells) == len(users) * len(SOURCE_NAMES) * 2
    for user, example in cells:
        assert example.context is not None and example.context.seed % 2 == 1
        latent = user.latent_style(example.context.source)
        assert example.tags == (latent or None)  # partial: the rest is the model's default
        answer = render(example.context, example.task, example.style)  # the oracle's ideal
        assert user.respond(example.context, example.task, answer).accepted
    user, short = next((u, e) for u, e in cells if (e.tags or {}).get("length") == "short")
    assert short.context is not None
    too_long = render(short.context, short.task, {**short.style, "length": "long"})
    assert not user.respond(short.context, short.task, too_long).accepted
