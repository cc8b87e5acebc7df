"""Retrieval at generation: cosine order, the user's own preferences first, aggregation."""

from __future__ import annotations

import math
import random

import pytest

from apps.memory.cipher import Neighbor, rank
from apps.memory.inference import OfflineBackend
from apps.memory.models import MemoryEntry
from apps.memory.selectors import embed_context, nearest, preference_for
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db

QUERY = [1.0] + [0.0] * 383
INFERRED, USED, USER = (MemoryEntry.Origin.INFERRED, MemoryEntry.Origin.USED,
                        MemoryEntry.Origin.USER)  # fmt: skip


def at_distance(distance: float, axis: int = 1) -> list[float]:
    """A unit vector at the given cosine distance from QUERY."""
    vector = [0.0] * 384
    vector[0], vector[axis] = 1 - distance, math.sqrt(1 - (1 - distance) ** 2)
    return vector


def entry(user, preference: str, distance: float | None, origin: str = INFERRED) -> MemoryEntry:
    return MemoryEntry.objects.create(
        user=user,
        preference=preference,
        origin=origin,
        context_text=f"context of {preference}",
        embedding=None if distance is None else at_distance(distance),
    )


def test_nearest_orders_the_users_own_entries_by_cosine_distance(user, other_user):
    far, near, middle = entry(user, "far", 0.6), entry(user, "near", 0.05), entry(user, "mid", 0.3)
    entry(user, "not embedded yet", None)
    entry(other_user, "someone else's", 0.0)
    found = nearest(user, QUERY, k=5)
    assert [n.entry_id for n in found] == [near.pk, middle.pk, far.pk]
    assert found[0].distance == pytest.approx(0.05, abs=1e-5)
    assert [n.entry_id for n in nearest(user, QUERY, k=2)] == [near.pk, middle.pk]


def test_a_preference_the_user_wrote_outranks_inferred_ones_for_similar_contexts(user, settings):
    settings.ATTUNE_MEMORY_PRECEDENCE_DISTANCE = 0.5
    inferred = [entry(user, "brief, casual", d) for d in (0.05, 0.1, 0.15)]
    own = entry(user, "bullet points", 0.4, origin=USER)
    entry(user, "detailed", 0.9, origin=USER)  # the user's, but for other contexts
    found = nearest(user, QUERY, k=3)
    assert [n.entry_id for n in found] == [own.pk, inferred[0].pk, inferred[1].pk]
    assert found[0].written_by_user and found[0].in_charge(0.5)
    conditioning = preference_for(user, QUERY, k=3, backend=OfflineBackend())
    assert conditioning.preference == "bullet points; brief, casual"
    assert conditioning.memory_ids == (own.pk, inferred[0].pk, inferred[1].pk)


def test_preference_for_aggregates_the_most_represented_attributes(user):
    entry(user, "detailed, prose", 0.3)  # the oldest: outvoted on what the others name
    entry(user, "brief, bullet points", 0.1)
    entry(user, "brief, with emojis", 0.2, origin=USED)
    conditioning = preference_for(user, QUERY, k=5, backend=OfflineBackend())
    assert conditioning.preference == "brief, bullet points, with emojis"
    assert len(conditioning.memory_ids) == 3 and conditioning.usage.calls == 1
    single = preference_for(user, QUERY, k=1, backend=OfflineBackend())  # CIPHER-1
    assert single.preference == "brief, bullet points" and single.usage.calls == 0
    assert preference_for(UserFactory(), QUERY).preference == ""  # empty memory


def test_entries_within_reach_are_not_outvoted_by_farther_ones(user, settings):
    settings.ATTUNE_MEMORY_NEAR_DISTANCE = 0.7
    near = entry(user, "prose, formal", 0.2)  # the one edit for this kind of context
    for d in (0.8, 0.85, 0.9, 0.95):  # other kinds of context, all wanting the opposite
        entry(user, "bullet points, casual", d)
    conditioning = preference_for(user, QUERY, k=5, backend=OfflineBackend())
    assert conditioning.preference == "prose, formal" and conditioning.memory_ids == (near.pk,)
    settings.ATTUNE_MEMORY_NEAR_DISTANCE = 2.0  # off: the k nearest vote, whatever their distance
    assert preference_for(user, QUERY, k=5, backend=OfflineBackend()).preference == (
        "bullet points, casual"
    )
    near.delete()  # nothing within reach: a new kind of context borrows from the nearest
    settings.ATTUNE_MEMORY_NEAR_DISTANCE = 0.7
    assert preference_for(user, QUERY, k=5, backend=OfflineBackend()).preference == (
        "bullet points, casual"
    )


def test_the_sql_order_is_the_rule_of_apps_memory_cipher(user, settings):
    rng = random.Random(4)
    threshold = settings.ATTUNE_MEMORY_PRECEDENCE_DISTANCE
    neighbors = []
    for i in range(40):
        made = entry(user, f"p{i}", round(rng.uniform(0.0, 1.0), 3), rng.choice([INFERRED, USER]))
        neighbors.append((made.pk, made.origin == USER))
    found = nearest(user, QUERY, k=10)
    expected = rank(
        [Neighbor(n.entry_id, n.preference, n.distance, n.written_by_user)
         for n in nearest(user, QUERY, k=40)], 10, threshold,
    )  # fmt: skip
    assert [n.entry_id for n in found] == [n.entry_id for n in expected]
    assert found[0].written_by_user  # some user-written entry is within the threshold


@pytest.mark.slow
def test_preference_for_a_context_text_embeds_it_like_an_interaction_prompt(user):
    news = "The city council approved funding for a new river park on Tuesday."
    for text, preference in ((news, "brief, casual"), ("Apple pie needs cinnamon.", "detailed")):
        MemoryEntry.objects.create(
            user=user, preference=preference, origin=INFERRED, context_text=text,
            embedding=embed_context(text),
        )  # fmt: skip
    conditioning = preference_for(
        user, "Council votes to fund a park by the river.", k=1, backend=OfflineBackend()
    )
    assert conditioning.preference == "brief, casual"


def test_the_users_own_preference_is_found_beyond_the_hamming_candidates(user, settings):
    settings.ATTUNE_MEMORY_CANDIDATES = 2
    for d in (0.01, 0.02, 0.03, 0.04):
        entry(user, "brief", d)
    far_in_hamming = at_distance(0.45, axis=2)
    far_in_hamming[3:60] = [1e-4] * 57  # many more sign bits set: not among the 2 candidates
    own = MemoryEntry.objects.create(
        user=user, preference="detailed", origin=USER, context_text="c", embedding=far_in_hamming
    )
    found = nearest(user, QUERY, k=3)
    assert found[0].entry_id == own.pk and len(found) == 3


def test_the_cached_memory_follows_every_change_of_the_users_entries(user, other_user):
    from apps.memory.cache import memory_cache

    cache = memory_cache()
    first = entry(user, "brief", 0.1)
    assert [n.entry_id for n in nearest(user, QUERY)] == [first.pk]
    loads, refreshes = cache.loads, cache.refreshes
    assert [n.entry_id for n in nearest(user, QUERY)] == [first.pk]
    assert (cache.loads, cache.refreshes) == (loads, refreshes)  # unchanged: served as it is
    entry(other_user, "someone else's", 0.0)
    nearest(user, QUERY)
    assert cache.loads == loads  # another user's write does not touch this user's copy
    closer = entry(user, "casual", 0.05)  # an insert: only the new row is read
    entry(user, "not embedded yet", None)
    assert [n.entry_id for n in nearest(user, QUERY)] == [closer.pk, first.pk]
    assert (cache.loads, cache.refreshes) == (loads, refreshes + 1)
    MemoryEntry.objects.filter(pk=first.pk).update(preference="detailed")  # bulk update
    assert nearest(user, QUERY)[1].preference == "detailed"
    MemoryEntry.objects.filter(pk=closer.pk).update(embedding=at_distance(0.9))  # re-embedded
    assert [n.entry_id for n in nearest(user, QUERY)] == [first.pk, closer.pk]
    MemoryEntry.objects.filter(pk=closer.pk).delete()
    assert [n.entry_id for n in nearest(user, QUERY)] == [first.pk]
    assert (cache.loads, cache.refreshes) == (loads, refreshes + 4)  # only changed rows read
    MemoryEntry.objects.filter(user=user).delete()  # bulk delete, as "delete my data" does
    assert nearest(user, QUERY) == []


def test_the_cache_keeps_the_most_recent_users_within_its_byte_bound(user, other_user):
    from apps.memory.cache import MemoryCache

    entry(user, "brief", 0.1)
    entry(other_user, "casual", 0.1)
    cache = MemoryCache(max_bytes=1)  # room for one user's memory at most
    first = cache.get(user.pk)
    assert cache.size() == first.nbytes > 0
    second = cache.get(other_user.pk)
    assert cache.size() == second.nbytes  # the least recently used user went
    cache.get(user.pk)
    assert cache.loads == 3 and cache.size() == first.nbytes
