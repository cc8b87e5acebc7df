"""Restyling any text: sentences, units, the prose renderer, and the faithfulness measures."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from core.text import split_sentences
from core.world import faithfulness
from core.world.detectors import detect_length, detect_style
from core.world.prose import clause, render_prose, title_and_body, units
from core.world.renderer import TASKS
from core.world.styles import ATTRIBUTE_NAMES, random_style

REAL = json.loads((Path(__file__).parents[2] / "data" / "real_paragraphs.json").read_text())


def test_sentences_end_at_marks_not_at_abbreviations_initials_or_decimals() -> None:
    text = (
        "Dr. Lee met J. R. Smith in the U.S. on Monday. Prices rose by 2.5 percent! To 7. Why? Yes."
    )
    assert split_sentences(text) == [
        "Dr. Lee met J. R. Smith in the U.S. on Monday.",
        "Prices rose by 2.5 percent!",
        "To 7.",
        "Why?",
        "Yes.",
    ]
    assert split_sentences("no end at all") == ["no end at all"]


def test_units_drop_questions_and_cut_long_sentences_at_clause_boundaries() -> None:
    long = (
        "The new bridge over the river opened to traffic on Friday after four years of work; "
        "the old ferry service that carried cars across will stop at the end of the month."
    )
    found = units(f"Is this news? {long} It was cheap.")
    assert found[0].startswith("The new bridge") and found[1].startswith("the old ferry")
    assert found[-1] == "It was cheap." and len(found) == 3


def test_a_heading_line_becomes_the_email_subject() -> None:
    text = "Tram line approved\nThe council approved a tram line. It opens in 2031."
    assert title_and_body(text)[0] == "Tram line approved"
    assert render_prose(text, "email").startswith("Subject: Tram line approved\n\n")
    assert "Subject: Key points" in render_prose(REAL[0], "email")


def test_clauses_lower_common_first_words_and_keep_the_rest() -> None:
    assert clause("Maria arrived late.") == "Maria arrived late"
    assert clause("The council met.") == "the council met"
    assert clause("But the vote failed!") == "the vote failed"
    assert clause("NASA launched it.") == "NASA launched it"
    assert clause("A storm came.") == "a storm came"
    assert clause("Heavy rain fell.") == "Heavy rain fell"


@pytest.mark.parametrize("paragraph", REAL[:8])
def test_every_style_of_a_real_paragraph_is_detected_and_invents_nothing(paragraph: str) -> None:
    rng = random.Random(paragraph)
    for _ in range(12):
        style, task = random_style(rng), rng.choice(TASKS)
        text = render_prose(paragraph, task, style)
        detected = detect_style(text)
        assert {a: detected[a] for a in ATTRIBUTE_NAMES if a != "person"} == {
            a: style[a] for a in ATTRIBUTE_NAMES if a != "person"
        }, text
        assert faithfulness.faithfulness(text, paragraph) == 1.0
        assert not faithfulness.has_loop(text)


def test_lengths_keep_the_first_units_and_long_keeps_them_all() -> None:
    paragraph = REAL[0]
    short = render_prose(paragraph, "summarize", {"length": "short"})
    long = render_prose(paragraph, "summarize", {"length": "long"})
    first = faithfulness.first_sentence(paragraph)
    assert faithfulness.coverage(short, first) == 1.0
    assert faithfulness.coverage(long, paragraph) == 1.0
    assert faithfulness.coverage(short, paragraph) < 0.6


def test_three_or_four_units_that_end_on_a_closing_frame_read_as_long() -> None:
    four = "It rained. The roads flooded. Schools closed. The sun came back."
    assert detect_length(render_prose(four, "summarize", {"length": "long"})) == "long"
    assert detect_length(render_prose(four, "summarize", {"length": "medium"})) == "medium"
    assert detect_length("It rained. Finally, it stopped.") == "short"


def test_faithfulness_counts_invented_content_words_and_loops() -> None:
    source = "The council approved a tram line on Monday."
    assert faithfulness.faithfulness("According to the text, the council approved it.", source) == 1
    invented = "According to the text, the council rejected a bus line."
    assert faithfulness.faithfulness(invented, source) == pytest.approx(2 / 4)
    assert faithfulness.coverage("the council", source) == pytest.approx(1 / 5)
    assert faithfulness.has_loop("the model has the model has the model has it")
    assert not faithfulness.has_loop("the model has the model has it")
