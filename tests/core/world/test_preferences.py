"""Preference phrases <-> style tags, and aggregation into the most represented attributes."""

from __future__ import annotations

import pytest

from core.world.preferences import (
    PHRASES,
    aggregate_phrases,
    most_represented,
    parse_preference,
    phrase_to_style,
    style_to_phrase,
)
from core.world.styles import ATTRIBUTES


def test_issue_example_phrase() -> None:
    assert phrase_to_style("bullet points, brief, no emojis") == {
        "length": "short",
        "format": "bullets",
        "emoji": "no",
    }


@pytest.mark.parametrize(("key", "phrases"), list(PHRASES.items()))
def test_every_synonym_maps_to_its_value(key: tuple[str, str], phrases: tuple[str, ...]) -> None:
    name, value = key
    for phrase in phrases:
        assert phrase_to_style(phrase) == {name: value}, phrase


def test_every_value_has_a_phrase_that_round_trips() -> None:
    for attribute in ATTRIBUTES:
        for value in attribute.values:
            style = {attribute.name: value}
            assert phrase_to_style(style_to_phrase(style)) == style


def test_full_style_round_trips_through_a_phrase() -> None:
    style = {
        "length": "long",
        "format": "prose",
        "tone": "casual",
        "emoji": "yes",
        "greeting": "no",
        "person": "second",
        "question": "yes",
    }
    phrase = style_to_phrase(style)
    assert phrase.startswith("detailed, prose, casual, with emojis")
    assert phrase_to_style(phrase) == style


def test_negations_win_over_the_words_they_contain() -> None:
    assert phrase_to_style("No bullet points and no emojis; no greeting") == {
        "format": "prose",
        "emoji": "no",
        "greeting": "no",
    }


def test_unknown_words_are_reported_and_the_later_value_wins() -> None:
    parsed = parse_preference("storytelling, brief, then detailed")
    assert parsed.style == {"length": "long"}
    assert "storytelling" in parsed.unmatched


def test_most_represented_keeps_majority_values_only() -> None:
    styles = [
        {"length": "short", "tone": "casual"},
        {"length": "short", "tone": "formal", "emoji": "yes"},
        {"length": "long", "tone": "casual"},
    ]
    assert most_represented(styles) == {"length": "short", "tone": "casual"}
    assert most_represented(styles, min_share=0.0) == {
        "length": "short",
        "tone": "casual",
        "emoji": "yes",
    }
    assert most_represented([]) == {}
    # weighted: the second style (4 of 6 votes) outvotes the two that disagree with it
    assert most_represented(styles, weights=[1, 4, 1]) == {
        "length": "short",
        "tone": "formal",
        "emoji": "yes",
    }
    with pytest.raises(ValueError):
        most_represented(styles, weights=[1, 2])


def test_most_represented_of_naming_counts_only_the_styles_that_name_an_attribute() -> None:
    styles = [{"length": "short"}, {"tone": "casual"}, {"tone": "casual"}, {"tone": "formal"}]
    assert most_represented(styles) == {"tone": "casual"}  # short: 1 of 4
    assert most_represented(styles, of_naming=True) == {"length": "short", "tone": "casual"}
    split = [{"tone": "casual"}, {"tone": "formal"}, {"tone": "formal"}]
    assert most_represented(split, weights=[3, 1, 1], of_naming=True) == {"tone": "casual"}


def test_aggregate_phrases_writes_one_phrase() -> None:
    phrases = ["brief, casual", "brief, formal, with emojis", "detailed, casual, bullet points"]
    assert aggregate_phrases(phrases) == "brief, casual"
