"""Style detectors agree with the renderer's labels, and find facts as whole words."""

from __future__ import annotations

import random

from core.world.detectors import contains_fact, detect_style, fact_retention, style_matches
from core.world.renderer import TASKS, render
from core.world.sources import Fact, sample_context
from core.world.styles import ATTRIBUTE_NAMES, default_style, random_style


def test_detectors_recover_every_attribute_of_renderings() -> None:
    rng = random.Random(42)
    misses = dict.fromkeys(ATTRIBUTE_NAMES, 0)
    for _ in range(300):
        style = random_style(rng)
        detected = detect_style(render(sample_context(rng), rng.choice(TASKS), style))
        for name in ATTRIBUTE_NAMES:
            misses[name] += detected[name] != style[name]
    assert all(count <= 6 for count in misses.values()), misses


def test_detectors_on_hand_written_texts() -> None:
    casual = (
        "Hey there!\n\n- So, you'll love this: prices went up! 🎉\n- Plus, it rained!\n\n"
        "Pretty wild news, right?\n\nCheers, Sam"
    )
    assert detect_style(casual) == {
        "length": "short",
        "format": "bullets",
        "tone": "casual",
        "emoji": "yes",
        "greeting": "yes",
        "person": "second",
        "question": "yes",
    }
    formal = (
        "According to the report, sales rose. In addition, costs fell. Furthermore, staff grew. "
        "Moreover, profit doubled. Notably, debt shrank. Finally, the firm expanded."
    )
    assert detect_style(formal) == {**default_style(), "length": "long"}


def test_style_matches_reports_only_the_named_attributes() -> None:
    text = "According to the report, sales rose."
    assert style_matches(text, {"length": "short", "tone": "casual"}) == {
        "length": True,
        "tone": False,
    }


def test_facts_are_found_as_whole_words_only() -> None:
    fact = Fact(key="amount", value="42", clause="the budget is 42 million")
    assert contains_fact("The budget is 42 million.", fact)
    assert not contains_fact("About 1,420 people came; 142 left.", fact)
    assert not contains_fact("It took 4,2 hours", Fact("x", "2", "2"))
    both = [fact, Fact(key="city", value="Lisbon", clause="in Lisbon")]
    assert fact_retention("In Lisbon, 42 people.", both) == 1.0
    assert fact_retention("In Porto.", both) == 0.0
    assert fact_retention("anything", []) == 1.0
