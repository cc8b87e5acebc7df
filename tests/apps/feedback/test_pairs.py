"""The one reader of preference pairs and thumbs (export, adapter fit and CoPL): what becomes a
pair, scopes and cutoffs, and the held-out split."""

from __future__ import annotations

import pytest

from apps.feedback import selectors
from apps.feedback.selectors import PreferencePair, Thumb
from tests.support.factories import (
    ComparisonFactory,
    EditFactory,
    InteractionFactory,
    RatingFactory,
    UserFactory,
)

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

    found = selectors.preference_pairs()
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
    assert [p.key.split(":")[0] for p in found] == ["edit", "comparison"] + ["ratings"] * 3
    assert selectors.pair_count() == 5
    assert selectors.pair_count(with_ratings=False) == 2


def test_stars_order_pairs_and_thumbs_mix_with_stars():
    user = UserFactory()
    rate(user, "s", "three", stars=3)
    rate(user, "s", "one", stars=1)
    rate(user, "s", "thumb up", thumbs_up=True, stars=None)
    found = {(p.chosen, p.rejected) for p in selectors.preference_pairs(user=user)}
    assert found == {("three", "one"), ("thumb up", "three"), ("thumb up", "one")}


def test_identical_texts_say_nothing():
    user = UserFactory()
    ComparisonFactory(user=user, response_a="same", response_b="same", choice="a")
    rate(user, "r", "same", stars=5)
    rate(user, "r", "same", stars=1)
    assert selectors.preference_pairs() == [] and selectors.pair_count() == 0


def test_a_users_pairs_in_id_order_up_to_cutoffs():
    user, other = UserFactory(), UserFactory()
    first = EditFactory(interaction__user=user, interaction__prompt="e", edited="edited one")
    ComparisonFactory(user=user, prompt="c", response_a="a1", response_b="b1", choice="a")
    ComparisonFactory(user=other, response_a="theirs", response_b="not", choice="a")
    cutoffs = selectors.current_cutoffs(user)
    second = EditFactory(interaction__user=user, edited="edited two")
    ComparisonFactory(user=user, response_a="a2", response_b="b2", choice="b")

    assert selectors.preference_pairs(user=user, upto=cutoffs) == [
        PreferencePair(f"edit:{first.pk}", user.pk, "e", "edited one", first.original),
        PreferencePair(f"comparison:{cutoffs.comparison}", user.pk, "c", "a1", "b1"),
    ]
    newer = selectors.preference_pairs(user=user, after=cutoffs)
    assert [p.chosen for p in newer] == ["edited two", "b2"]
    assert newer[0].key == f"edit:{second.pk}"
    assert selectors.pair_count(user=user, after=cutoffs) == 2
    assert selectors.pair_count(user=user) == 4 and selectors.pair_count() == 5


def test_cutoffs_fix_the_data_a_run_sees():
    user = UserFactory()
    ComparisonFactory(user=user, response_a="a1", response_b="b1", choice="a")
    cutoffs = selectors.current_cutoffs()
    ComparisonFactory(user=user, response_a="a2", response_b="b2", choice="a")
    assert [p.chosen for p in selectors.preference_pairs(upto=cutoffs)] == ["a1"]
    assert len(selectors.preference_pairs()) == 2


def test_a_rating_pair_is_new_when_its_newer_rating_is():
    user = UserFactory()
    rate(user, "r", "good", stars=5)
    rate(user, "r", "bad", stars=1)
    cutoffs = selectors.current_cutoffs()
    rate(user, "r", "middling", stars=3)
    newer = selectors.preference_pairs(after=cutoffs)
    assert {(p.chosen, p.rejected) for p in newer} == {("good", "middling"), ("middling", "bad")}
    assert selectors.pair_count(after=cutoffs) == 2 and selectors.pair_count() == 3


def test_thumbs_label_ratings_and_leave_three_stars_out():
    user = UserFactory()
    for output, thumbs_up, stars in [("up", True, None), ("three", None, 3), ("one", None, 1)]:
        rate(user, "p", output, thumbs_up=thumbs_up, stars=stars)
    found = list(selectors.thumbs(user=user))
    assert [(t.completion, t.label) for t in found] == [("up", True), ("one", False)]
    assert all(t.key.startswith("rating:") and t.user_id == user.pk for t in found)
    cutoffs = selectors.current_cutoffs(user)
    rate(user, "p", "later", stars=5)
    assert len(list(selectors.thumbs(user=user, upto=cutoffs))) == 2
    assert [t.completion for t in selectors.thumbs(user=user, after=cutoffs)] == ["later"]


def pairs_of(user_id: int, n: int) -> list[PreferencePair]:
    return [PreferencePair(f"edit:{user_id}{i:03}", user_id, "p", "c", "r") for i in range(n)]


@pytest.mark.parametrize(
    ("n", "share", "held"),
    [(1, 0.2, 0), (2, 0.2, 0), (4, 0.2, 0), (5, 0.2, 1), (6, 0.2, 1), (8, 0.2, 1), (10, 0.2, 2),
     (11, 0.2, 2), (16, 0.2, 3), (2, 0.9, 1), (100, 0.57, 57), (8, 0.1, 0), (8, 0.0, 0)],
)  # fmt: skip
def test_heldout_split_rule(n, share, held):
    """Per user: min(floor(n * share), n - 1) held out (every user keeps a training item; a fit
    of 8 pairs at 0.2 is scored on one), chosen by key, in the items' order."""
    items = pairs_of(7, n)
    train, heldout = selectors.split_heldout(items, share)
    assert len(heldout) == held and len(train) == n - held
    assert sorted(train + heldout, key=items.index) == items
    assert train == [p for p in items if p in train]  # order kept
    again = selectors.split_heldout(list(reversed(items)), share)[1]
    assert {p.key for p in again} == {p.key for p in heldout}  # by key, not by order


def test_heldout_split_is_per_user_and_works_for_thumbs():
    few, many = pairs_of(1, 1), pairs_of(2, 10)
    train, heldout = selectors.split_heldout(few + many, 0.2)
    assert len(heldout) == 2 and all(p.user_id == 2 for p in heldout)
    assert {p.user_id for p in train} == {1, 2}
    assert selectors.split_heldout(many, 0.2)[1] == heldout  # other users do not matter
    thumbs = [Thumb(f"rating:{i}", 3, "p", "c", i % 2 == 0) for i in range(5)]
    train_thumbs, held_thumbs = selectors.split_heldout(thumbs, 0.2)
    assert len(held_thumbs) == 1 and len(train_thumbs) == 4


def test_a_fit_reads_the_newest_pairs_of_edits_and_comparisons_together():
    user, other = UserFactory(), UserFactory()
    for i in range(5):  # edits and comparisons interleaved in time
        EditFactory(interaction__user=user, edited=f"edit {i}")
        ComparisonFactory(user=user, response_a=f"cmp {i}", response_b="no", choice="a")
    EditFactory(interaction__user=other, edited="someone else's")
    EditFactory(interaction__user=user, edited="kept", distance=0)  # no change: no pair

    newest = selectors.newest_pairs(user=user, upto=None, limit=3)
    assert [p.chosen for p in newest] == ["cmp 3", "edit 4", "cmp 4"]  # oldest first
    everything = selectors.newest_pairs(user=user, upto=None, limit=100)
    assert [p.chosen for p in everything] == [f"{k} {i}" for i in range(5) for k in ("edit", "cmp")]
    assert sorted(everything, key=lambda p: p.key) == sorted(
        selectors.preference_pairs(user=user, with_ratings=False), key=lambda p: p.key
    )
    assert selectors.newest_pairs(user=user, upto=None, limit=0) == []

    cutoffs = selectors.current_cutoffs(user)
    EditFactory(interaction__user=user, edited="after the request")
    assert [p.chosen for p in selectors.newest_pairs(user=user, upto=cutoffs, limit=1)] == ["cmp 4"]
