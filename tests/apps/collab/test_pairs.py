"""Everyone's feedback rows become CoPL's signed graph and its held-out pairs (the pairs
themselves are read by ``apps.feedback.selectors``: tests/apps/feedback/test_pairs.py)."""

from __future__ import annotations

import pytest

from apps.feedback import selectors
from core.text import text_key
from tests.support.factories import ComparisonFactory, UserFactory
from workers.collab.graph import build_graph

pytestmark = pytest.mark.django_db


def test_graph_from_db_rows_shares_response_nodes_across_users():
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    for user, choice in ((alice, "a"), (bob, "b"), (carol, "a")):
        ComparisonFactory(user=user, prompt="p", response_a="bullets", response_b="prose",
                          choice=choice)  # fmt: skip
    ComparisonFactory(user=carol, prompt="p2", response_a="emoji 🎉", response_b="plain",
                      choice="a")  # fmt: skip
    found = selectors.preference_pairs()
    graph = build_graph([(str(p.user_id), text_key(p.chosen), text_key(p.rejected)) for p in found])
    assert graph.n_users == 3 and graph.n_responses == 4  # one node per distinct text
    index = graph.text_index()
    bullets, prose = index[text_key("bullets")], index[text_key("prose")]
    users = graph.user_index()
    positive = {tuple(e) for e in graph.pos_edges.tolist()}
    negative = {tuple(e) for e in graph.neg_edges.tolist()}
    assert (users[str(alice.pk)], bullets) in positive
    assert (users[str(alice.pk)], prose) in negative
    assert (users[str(bob.pk)], prose) in positive
    assert (users[str(bob.pk)], bullets) in negative
    assert len(positive) == len(negative) == 4
    assert all(len(key) == 32 and "bullets" not in key for key in graph.texts)  # hashes only


def test_heldout_split_is_stable_and_keeps_a_training_pair_per_user():
    user, few = UserFactory(), UserFactory()
    for i in range(10):
        ComparisonFactory(user=user, response_a=f"a{i}", response_b=f"b{i}", choice="a")
    ComparisonFactory(user=few, response_a="x", response_b="y", choice="a")
    found = selectors.preference_pairs()
    train, heldout = selectors.split_heldout(found, 0.2)
    assert len(heldout) == 2 and all(p.user_id == user.pk for p in heldout)
    again = selectors.split_heldout(list(reversed(found)), 0.2)[1]
    assert {p.key for p in again} == {p.key for p in heldout}  # chosen by key, not by order
    assert {p.user_id for p in train} == {user.pk, few.pk}
