"""Everyone's feedback rows become CoPL's preference pairs and signed graph."""

from __future__ import annotations

import pytest

from apps.collab import pairs
from tests.support.factories import (
    ComparisonFactory,
    EditFactory,
    InteractionFactory,
    RatingFactory,
    UserFactory,
)
from workers.collab.graph import build_graph

pytestmark = pytest.mark.django_db


def rate(user, prompt: str, output: str, **rating) -> None:
    RatingFactory(interaction=InteractionFactory(user=user, prompt=prompt, output=output), **rating)


def test_comparisons_edits_and_ratings_become_pairs():
    alice, bob = UserFactory(), UserFactory()
    ComparisonFactory(user=alice, prompt="p", response_a="formal", response_b="casual", choice="b")
    ComparisonFactory(user=alice, prompt="p", response_a="x", response_b="y", choice="tie")
    EditFactory(interaction=InteractionFactory(user=bob, prompt="q", output="long prose"),
                edited="short bullets")  # fmt: skip
    EditFactory(interaction=InteractionFactory(user=bob, output="same"), edited="same", distance=0)
    # ratings: relative to the same user's other ratings on the same prompt
    rate(bob, "r", "liked", thumbs_up=True, stars=None)
    rate(bob, "r", "disliked", thumbs_up=False, stars=None)
    rate(bob, "r", "five stars", stars=5)
    rate(bob, "r", "also liked", thumbs_up=True, stars=None)  # ties "liked": no pair between them
    rate(bob, "other prompt", "alone", stars=1)  # nothing to compare with
    rate(alice, "r", "alice's", stars=3)  # another user's rating is not compared with bob's

    found = pairs.training_pairs()
    as_tuples = {(p.user_id, p.prompt, p.chosen, p.rejected) for p in found}
    assert (alice.pk, "p", "casual", "formal") in as_tuples
    assert (bob.pk, "q", "short bullets", "long prose") in as_tuples
    rating_pairs = {(c, r) for u, prompt, c, r in as_tuples if prompt == "r"}
    assert rating_pairs == {
        ("liked", "disliked"),
        ("five stars", "disliked"),
        ("also liked", "disliked"),
    }
    assert len(found) == 5 and len({p.key for p in found}) == 5
    assert all(p.user_id == bob.pk for p in found if p.prompt == "r")


def test_stars_order_pairs_and_thumbs_mix_with_stars():
    user = UserFactory()
    rate(user, "s", "three", stars=3)
    rate(user, "s", "one", stars=1)
    rate(user, "s", "thumb up", thumbs_up=True, stars=None)
    found = {(p.chosen, p.rejected) for p in pairs.training_pairs(user=user)}
    assert found == {("three", "one"), ("thumb up", "three"), ("thumb up", "one")}


def test_cutoffs_fix_the_data_a_run_sees():
    user = UserFactory()
    ComparisonFactory(user=user, response_a="a1", response_b="b1", choice="a")
    cutoffs = pairs.current_cutoffs()
    ComparisonFactory(user=user, response_a="a2", response_b="b2", choice="a")
    assert [p.chosen for p in pairs.training_pairs(cutoffs)] == ["a1"]
    assert len(pairs.training_pairs()) == 2


def test_graph_from_db_rows_shares_response_nodes_across_users():
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    for user, choice in ((alice, "a"), (bob, "b"), (carol, "a")):
        ComparisonFactory(user=user, prompt="p", response_a="bullets", response_b="prose",
                          choice=choice)  # fmt: skip
    ComparisonFactory(user=carol, prompt="p2", response_a="emoji 🎉", response_b="plain",
                      choice="a")  # fmt: skip
    found = pairs.training_pairs()
    graph = build_graph(
        [(str(p.user_id), pairs.text_key(p.chosen), pairs.text_key(p.rejected)) for p in found]
    )
    assert graph.n_users == 3 and graph.n_responses == 4  # one node per distinct text
    index = graph.text_index()
    bullets, prose = index[pairs.text_key("bullets")], index[pairs.text_key("prose")]
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
    found = pairs.training_pairs()
    train, heldout = pairs.split_heldout(found, 0.2)
    assert len(heldout) == 2 and all(p.user_id == user.pk for p in heldout)
    again = pairs.split_heldout(list(reversed(found)), 0.2)[1]
    assert {p.key for p in again} == {p.key for p in heldout}  # chosen by key, not by order
    assert {p.user_id for p in train} == {user.pk, few.pk}
