"""Sources and renderer: reproducible contexts, deterministic renderings, facts kept by length."""

from __future__ import annotations

import itertools
import random

import pytest

from core.world.detectors import contains_fact
from core.world.renderer import LENGTH_FACTS, TASKS, kept_facts, render
from core.world.sources import SOURCE_NAMES, contexts, make_context
from core.world.styles import ATTRIBUTES, default_style, random_style


def test_world_has_enough_sources_and_attributes() -> None:
    assert len(SOURCE_NAMES) >= 5
    assert len(ATTRIBUTES) >= 6


@pytest.mark.parametrize("source", SOURCE_NAMES)
def test_contexts_are_reproducible_and_varied(source: str) -> None:
    assert make_context(source, 7) == make_context(source, 7)
    family = list(itertools.islice(contexts(source), 20))
    assert len({c.text for c in family}) == 20
    assert [c.seed for c in family] == list(range(20))


@pytest.mark.parametrize("source", SOURCE_NAMES)
def test_every_key_fact_is_stated_in_its_context(source: str) -> None:
    context = make_context(source, 3)
    assert len(context.facts) == max(LENGTH_FACTS.values())
    for fact in context.facts:
        assert contains_fact(context.text, fact)
        assert fact.value in fact.clause


def test_rendering_is_deterministic() -> None:
    rng = random.Random(1)
    for _ in range(50):
        context = make_context(rng.choice(SOURCE_NAMES), rng.randrange(1000))
        task, style = rng.choice(TASKS), random_style(rng)
        assert render(context, task, style) == render(context, task, dict(style))


@pytest.mark.parametrize("length", ["short", "medium", "long"])
def test_a_rendering_keeps_the_facts_its_length_keeps(length: str) -> None:
    context = make_context("news", 11)
    style = {**default_style(), "length": length}
    text = render(context, "summarize", style)
    kept = kept_facts(context, style)
    assert len(kept) == LENGTH_FACTS[length]
    assert all(contains_fact(text, fact) for fact in kept)
    assert not any(contains_fact(text, fact) for fact in context.facts[len(kept) :])


def test_email_has_a_subject_and_summary_has_none() -> None:
    context = make_context("meeting", 2)
    assert render(context, "email").startswith(f"Subject: {context.title}\n")
    assert not render(context, "summarize").startswith("Subject:")


def test_render_fills_defaults_and_rejects_unknown_input() -> None:
    context = make_context("wiki", 5)
    assert render(context, "summarize") == render(context, "summarize", default_style())
    with pytest.raises(ValueError):
        render(context, "poem")
    with pytest.raises(ValueError):
        render(context, "summarize", {"length": "huge"})
