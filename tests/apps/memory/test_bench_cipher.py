"""The CIPHER benchmark's helpers: balanced context streams and learners that learn."""

from __future__ import annotations

from collections import Counter

import pytest

from bench._cipher_methods import METHODS
from bench.cipher import Agent, context_stream, finish_seed, play_round, start_seed
from core.world.simulated_users import parse_user
from core.world.sources import SOURCE_NAMES


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
