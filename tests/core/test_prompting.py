"""The single prompt format: style model prompts and instructions for real models."""

from __future__ import annotations

import pytest

from core.prompting import (
    CONTEXT_TOKEN,
    RESPONSE_TOKEN,
    as_tags,
    build_instruction,
    build_prompt,
    special_tokens,
)
from core.world.styles import all_tag_tokens


def test_build_prompt_puts_tags_task_context_then_response_marker() -> None:
    prompt = build_prompt("email", "Some text.", {"question": "yes", "length": "short"})
    assert prompt == (
        f"{CONTEXT_TOKEN} Some text.<length=short><question=yes><task=email>{RESPONSE_TOKEN}"
    )


def test_every_line_of_the_context_is_read_after_a_space() -> None:
    prompt = build_prompt("summarize", "Title\nFirst line.\nSecond line.")
    assert prompt.startswith(f"{CONTEXT_TOKEN} Title\n First line.\n Second line.<task=")


def test_build_prompt_without_tags_and_from_a_phrase() -> None:
    assert build_prompt("summarize", "X") == f"{CONTEXT_TOKEN} X<task=summarize>{RESPONSE_TOKEN}"
    assert build_prompt("summarize", "X", "brief, no emojis").endswith(
        f"X<length=short><emoji=no><task=summarize>{RESPONSE_TOKEN}"
    )
    assert as_tags(None) == {}


def test_unknown_task_is_rejected() -> None:
    with pytest.raises(ValueError):
        build_prompt("poem", "X")


def test_special_tokens_cover_every_tag() -> None:
    assert set(all_tag_tokens()) <= set(special_tokens())
    assert {CONTEXT_TOKEN, RESPONSE_TOKEN, "<task=email>"} <= set(special_tokens())


def test_instruction_states_the_preference_in_words() -> None:
    text = build_instruction("summarize", "Body.", {"format": "bullets"}, source="wiki")
    assert text.splitlines()[:2] == [
        "Summarize the following wiki article.",
        "Write it in this style: bullet points.",
    ]
    assert text.endswith("Body.")
    assert "style" not in build_instruction("email", "Body.")
    assert "tweet style" in build_instruction("email", "Body.", "tweet style")


def test_an_instruction_names_its_source_and_a_free_message_none():
    from core.prompting import build_instruction, instruction_source

    assert instruction_source(build_instruction("email", "Facts.", "brief", "news")) == "news"
    assert instruction_source(build_instruction("summarize", "Facts.", None, "wiki")) == "wiki"
    assert instruction_source("Summarize the following text.\n\nFacts.") == ""
    assert instruction_source("Tell me a story.") == ""
