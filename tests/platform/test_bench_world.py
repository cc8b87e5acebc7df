"""``bench world``'s check of every full style: each style once per source, judged as a user who
wants it."""

from __future__ import annotations

from bench.world import every_style, needs_edit
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
