"""Style attributes and their tag tokens."""

from __future__ import annotations

import random

import pytest

from core.world.styles import (
    ATTRIBUTE_NAMES,
    all_tag_tokens,
    default_style,
    full_style,
    random_style,
    style_to_tags,
    tags_to_style,
    validate_style,
)


def test_tags_round_trip() -> None:
    rng = random.Random(0)
    for _ in range(20):
        style = random_style(rng)
        tags = style_to_tags(style)
        assert tags_to_style(tags) == style
        assert tags_to_style("".join(tags)) == style
        assert set(tags) <= set(all_tag_tokens())


def test_partial_styles_keep_canonical_order_and_fill_defaults() -> None:
    partial = {"question": "yes", "length": "short"}
    assert style_to_tags(partial) == ["<length=short>", "<question=yes>"]
    full = full_style(partial)
    assert list(full) == list(ATTRIBUTE_NAMES)
    assert full == {**default_style(), **partial}


@pytest.mark.parametrize("bad", [{"colour": "red"}, {"tone": "angry"}])
def test_unknown_attributes_and_values_are_rejected(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        validate_style(bad)
