"""The CIPHER benchmark's helpers: balanced context streams and learners that learn."""

from __future__ import annotations

from collections import Counter

import pytest

from bench._cipher_methods import METHODS
from bench._reader_noise import NoisyReader, parse_noise
from bench.cipher import Agent, context_stream, finish_seed, play_round, start_seed
from core.world.detectors import detect_style
from core.world.renderer import render
from core.world.simulated_users import parse_user
from core.world.sources import SOURCE_NAMES, make_context


def test_context_streams_sample_sources_evenly_and_reproducibly():
    stream = context_stream(24, seed=1)
    assert set(Counter(c.source for c in stream).values()) == {24 // len(SOURCE_NAMES)}
    assert [c.seed for c in stream] == [c.seed for c in context_stream(24, seed=1)]
    assert [c.seed for c in stream] != [c.seed for c in context_stream(24, seed=2)]


@pytest.mark.slow
def test_cipher_learns_from_edits_where_no_learning_does_not():
    users = [
        parse_user({"id": "a", "preferences": {"news": "brief, bullet points", "wiki": "casual"}}),
        parse_user({"id": "b", "preferences": {"news": "with emojis", "forum": "detailed"}}),
    ]
    seed = start_seed(users, list(METHODS), context_stream(36, seed=0))
    agent = Agent()  # the renderer: a perfect style follower
    for t in range(36):
        play_round([seed], t, "summarize", agent)
    tallies = finish_seed(seed)
    cost = {method: tally.costs.sum() for method, tally in tallies.items()}
    assert cost["oracle"] == 0 and tallies["oracle"].accurate == tallies["oracle"].judged
    assert cost["CIPHER-5"] < cost["no learning"] / 2 and cost["CIPHER-1"] < cost["no learning"] / 2
    assert tallies["CIPHER-5"].usage.calls > 0 and tallies["ICL-edit-5"].usage.calls == 0
    assert tallies["ICL-edit-5"].conditioning_tokens > tallies["CIPHER-5"].conditioning_tokens


def test_the_noisy_reader_misses_and_invents_at_the_rates_asked():
    context = make_context("news", 1)
    original = render(context, "summarize", {})
    revised = render(context, "summarize", {"format": "bullets", "tone": "casual"})
    shown = {"format": "bullets", "tone": "casual"}
    reader = NoisyReader((0.3, 0.2), "test")
    reads = [reader.infer_one(original, revised) for _ in range(2000)]
    missed = sum(name not in read for read in reads for name in shown) / (2 * len(reads))
    invented = [{n: v for n, v in read.items() if n not in shown} for read in reads]
    assert missed == pytest.approx(0.3, abs=0.04)
    assert sum(bool(extra) for extra in invented) / len(reads) == pytest.approx(0.2, abs=0.03)
    actual = detect_style(revised)
    assert all(v != actual[n] for extra in invented for n, v in extra.items())  # always wrong
    assert NoisyReader((0, 0), "test").infer_one(original, revised) == shown
    assert parse_noise("0.2,0.1") == (0.2, 0.1)
    with pytest.raises(ValueError):
        parse_noise("0.2")
    with pytest.raises(ValueError):
        parse_noise("2,0")
