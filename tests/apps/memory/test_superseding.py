"""Superseding: a newer preference that contradicts older ones for similar contexts replaces
them (kept, restorable, never retrieved), so a person whose taste changes is followed at once."""

from __future__ import annotations

import math

import numpy as np
import pytest

from apps.feedback.models import Edit
from apps.memory.cache import memory_cache
from apps.memory.cipher import Rival, contradicts, superseding
from apps.memory.inference import OfflineBackend
from apps.memory.models import RETRIEVABLE, MemoryEntry
from apps.memory.selectors import nearest, nearest_in_database, preference_for
from apps.memory.services import (
    add_preference,
    delete_preference,
    infer_from_edit,
    restore,
    supersede_embedded,
    update_preference,
)
from core.errors import InvalidValue
from core.world.renderer import render
from core.world.sources import make_context
from tests.support.factories import InteractionFactory

pytestmark = pytest.mark.django_db
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
INFERRED, USER = MemoryEntry.Origin.INFERRED, MemoryEntry.Origin.USER


# --- the rule (pure) ---------------------------------------------------------------------------


def test_contradiction_is_an_attribute_both_phrases_name_with_different_values():
    assert contradicts("brief, bullet points", "prose")
    assert contradicts("no bullets", "a list, formal")
    assert not contradicts("brief", "prose")  # nothing named by both
    assert not contradicts("prose, casual", "paragraphs")  # the same value, other words
    assert not contradicts("whatever you like", "prose")  # unreadable: contradicts nothing
    assert not contradicts("", "bullet points")


def rival(pk: int, preference: str, distance: float, by_user: bool = False, newer: bool = False):
    return Rival(pk, preference, distance, by_user, newer)


def test_the_rule_keeps_the_k_nearest_within_the_cutoff_and_the_users_own_words():
    rivals = [
        rival(1, "bullet points", 0.1),
        rival(2, "bullet points, brief", 0.2),
        rival(3, "brief", 0.15),  # agrees on everything it names
        rival(4, "bullet points", 0.3, by_user=True),  # the user's own words
        rival(5, "bullet points", 0.45),  # not among the k = 4 nearest
        rival(6, "bullet points", 0.7),  # beyond the cut-off
    ]
    assert superseding("prose", False, rivals, k=4, cutoff=0.5).supersedes == (1, 2)
    assert superseding("prose", True, rivals, k=4, cutoff=0.5).supersedes == (1, 2, 4)
    assert superseding("prose", True, rivals, k=6, cutoff=0.5).supersedes == (1, 2, 4, 5)
    assert superseding("prose", True, rivals, k=6, cutoff=0.8).supersedes == (1, 2, 4, 5, 6)
    assert superseding("brief", True, rivals, k=6, cutoff=0.8).supersedes == ()


def test_an_entry_embedded_late_is_replaced_by_a_newer_contradicting_one():
    rivals = [rival(1, "bullet points", 0.1), rival(9, "prose", 0.2, newer=True),
              rival(7, "prose", 0.3, newer=True)]  # fmt: skip
    decision = superseding("bullet points", False, rivals, k=5, cutoff=0.5)
    assert decision.superseded_by == 9 and decision.supersedes == ()  # the newest one
    # a newer learned entry never replaces the user's own words: theirs replaces the older one
    decision = superseding("bullet points", True, [*rivals[:2], rival(3, "prose", 0.1)], 5, 0.5)
    assert decision.superseded_by is None and decision.supersedes == (3,)


# --- in the database: every way an entry is stored ------------------------------------------

WIKI = make_context("wiki", 5)
BULLETS = render(WIKI, "summarize", {"format": "bullets"})
PROSE = render(WIKI, "summarize", {"format": "prose"})


def near(axis: int, center: int = 0, spread: float = 0.1) -> list[float]:
    """A unit vector at cosine distance ``spread`` from axis ``center``, leaning to ``axis``:
    two of them (other axes) are ~``2 * spread`` apart; other centers are 1 away."""
    vector = [0.0] * 384
    vector[center], vector[axis] = 1 - spread, math.sqrt(1 - (1 - spread) ** 2)
    return vector


WIKI_AT, NEWS_AT = 0, 200  # two sources far apart (cosine distance ~1)


def learned(user, edited: str, vector: list[float], source: str = "wiki") -> MemoryEntry:
    """An entry inferred (offline backend) from a real edit of an interaction already embedded."""
    interaction = InteractionFactory(
        user=user, prompt=WIKI.text, output=PROSE if edited == BULLETS else BULLETS,
        source=source, embedding=vector, embedding_model=MODEL, embedding_dim=384,
    )  # fmt: skip
    edit = Edit.objects.create(
        user=user, interaction=interaction, original=interaction.output, edited=edited, distance=9
    )
    entry = infer_from_edit(edit.pk, OfflineBackend())
    assert entry is not None and entry.embedding is not None
    return entry


def active_ids(user) -> set[int]:
    return set(MemoryEntry.objects.filter(RETRIEVABLE, user=user).values_list("pk", flat=True))


def retrieved(user, vector: list[float]) -> tuple[set[int], set[int]]:
    """The entries the process copy and the database rank for ``vector`` (k = 5)."""
    in_copy = {n.entry_id for n in nearest(user, vector)}
    return in_copy, {n.entry_id for n in nearest_in_database(user, vector)}


def test_a_newer_preference_replaces_the_older_ones_for_similar_contexts(user):
    memory_cache().clear()
    old = [learned(user, BULLETS, near(i + 1)) for i in range(5)]
    query = near(40)  # another wiki context
    assert all("bullet points" in e.preference for e in old)
    assert retrieved(user, query) == ({e.pk for e in old},) * 2  # the copy is loaded now
    new = learned(user, PROSE, near(10))
    assert "prose" in new.preference and new.superseded_by_id is None
    rows = MemoryEntry.objects.filter(pk__in=[e.pk for e in old])
    assert {(e.superseded_by_id, e.superseded_at is not None) for e in rows} == {(new.pk, True)}
    assert retrieved(user, query) == ({new.pk},) * 2  # the copy refreshed, the SQL filters
    conditioning = preference_for(user, query, backend=OfflineBackend())
    assert "prose" in conditioning.preference and conditioning.memory_ids == (new.pk,)
    # news bullet points come later, far away: nothing is replaced either way
    news = [learned(user, BULLETS, near(NEWS_AT + i + 1, NEWS_AT), "news") for i in range(3)]
    assert active_ids(user) == {new.pk} | {e.pk for e in news}


def test_only_entries_within_the_cutoff_are_replaced_even_among_the_k_nearest(user, settings):
    settings.ATTUNE_MEMORY_SUPERSEDE_DISTANCE = 0.5
    news = [learned(user, BULLETS, near(NEWS_AT + i + 1, NEWS_AT), "news") for i in range(4)]
    wiki = learned(user, BULLETS, near(1))
    new = learned(user, PROSE, near(2))  # its 5 nearest: the wiki entry, then news (~1 away)
    assert active_ids(user) == {new.pk} | {e.pk for e in news}
    assert MemoryEntry.objects.get(pk=wiki.pk).superseded_by_id == new.pk
    settings.ATTUNE_MEMORY_SUPERSEDE_DISTANCE = 1.5  # no cut-off: the k nearest contradicting
    newest = learned(user, PROSE, near(3))
    assert active_ids(user) == {new.pk, newest.pk}


def test_a_learned_entry_never_replaces_one_the_user_wrote_and_theirs_replaces_any(user):
    interaction = InteractionFactory(
        user=user, prompt=WIKI.text, embedding=near(1), embedding_model=MODEL, embedding_dim=384
    )
    own = add_preference(user, preference="bullet points", interaction_id=interaction.pk)
    assert own.origin == USER and own.embedding is not None  # copied: it supersedes at once
    inferred = learned(user, PROSE, near(2))
    assert active_ids(user) == {own.pk, inferred.pk}  # the user's words stay in charge
    again = learned(user, BULLETS, near(3))  # contradicts the inferred prose: replaces it
    assert active_ids(user) == {own.pk, again.pk}
    interaction = InteractionFactory(
        user=user, prompt=WIKI.text, embedding=near(4), embedding_model=MODEL, embedding_dim=384
    )
    theirs = add_preference(user, preference="prose, casual", interaction_id=interaction.pk)
    assert active_ids(user) == {theirs.pk}  # the user's new words replace their old ones too
    assert set(MemoryEntry.objects.filter(superseded_by=theirs).values_list("pk", flat=True)) == {
        own.pk,
        again.pk,
    }


def test_restore_brings_an_entry_back_into_retrieval_in_the_copy_and_the_database(user):
    old = [learned(user, BULLETS, near(i + 1)) for i in range(3)]
    new = learned(user, PROSE, near(10))
    query = near(40)
    assert retrieved(user, query) == ({new.pk},) * 2
    cache = memory_cache()
    loads, refreshes = cache.loads, cache.refreshes
    back = restore(MemoryEntry.objects.get(pk=old[0].pk))
    assert back.superseded_by_id is None and back.superseded_at is None
    assert retrieved(user, query) == ({new.pk, old[0].pk},) * 2
    assert (cache.loads, cache.refreshes) == (loads, refreshes + 1)  # read from the change log
    assert active_ids(user) == {new.pk, old[0].pk}  # restoring replaces nothing
    with pytest.raises(InvalidValue, match="not replaced"):
        restore(back)


def test_forgetting_the_newer_entry_brings_back_what_it_replaced(user):
    old = learned(user, BULLETS, near(1))
    new = learned(user, PROSE, near(2))
    delete_preference(new)
    old.refresh_from_db()
    assert (old.superseded_by_id, old.superseded_at) == (None, None)
    assert active_ids(user) == {old.pk}


def test_a_correction_is_the_users_newest_word_and_replaces_contradicting_neighbors(user):
    first, second = learned(user, BULLETS, near(1)), learned(user, BULLETS, near(2))
    far_away = learned(user, BULLETS, near(NEWS_AT + 1, NEWS_AT), "news")
    update_preference(MemoryEntry.objects.get(pk=first.pk), preference="prose")
    assert active_ids(user) == {first.pk, far_away.pk}
    assert MemoryEntry.objects.get(pk=second.pk).superseded_by_id == first.pk


def test_an_entry_embedded_later_supersedes_then_or_is_replaced_by_a_newer_one(user):
    """What the embedding task's signal runs (the real task is the slow test below)."""
    written = add_preference(user, preference="bullet points", context_text=WIKI.text)
    assert written.embedding is None and active_ids(user) == set()
    inferred = learned(user, PROSE, near(1))  # the user's entry has no vector yet
    later = add_preference(user, preference="prose", context_text=WIKI.text)
    stale = learned(user, BULLETS, near(3))  # replaces the inferred prose
    assert active_ids(user) == {stale.pk}
    for entry, vector in ((written, near(2)), (later, near(4))):
        MemoryEntry.objects.filter(pk=entry.pk).update(embedding=vector)
        entry.refresh_from_db()
    supersede_embedded([later, written])  # oldest first, whatever the order given
    # the user's older "bullet points" is replaced by their newer "prose" (stored after it); the
    # learned "bullet points" stored after their "prose" stays, as it would have had the vectors
    # come in order (their words are in charge of retrieval anyway)
    assert MemoryEntry.objects.get(pk=written.pk).superseded_by_id == later.pk
    assert active_ids(user) == {later.pk, stale.pk}
    assert MemoryEntry.objects.get(pk=inferred.pk).superseded_by_id == stale.pk


@pytest.mark.slow
def test_the_embedding_task_supersedes_with_real_contexts_of_the_offline_world(user, settings):
    """Real MiniLM embeddings: meeting notes are near each other (median 0.34), news items
    at least 0.57 away from them, beyond the default cut-off (0.5)."""
    from apps.common.embeddings import embed_pending

    assert settings.ATTUNE_MEMORY_SUPERSEDE_DISTANCE == 0.5
    meetings = [make_context("meeting", seed).text for seed in range(6)]
    news = [make_context("news", seed).text for seed in range(3)]
    for text in meetings[:5]:
        add_preference(user, preference="bullet points", context_text=text, source="meeting")
    for text in news:
        add_preference(user, preference="bullet points", context_text=text, source="news")
    assert embed_pending(MemoryEntry) == 8 and len(active_ids(user)) == 8
    new = add_preference(user, preference="prose", context_text=meetings[5], source="meeting")
    assert embed_pending(MemoryEntry) == 1  # the signal runs superseding with the vectors
    rows = list(MemoryEntry.objects.filter(user=user).exclude(pk=new.pk))
    vectors = np.array([list(row.embedding) for row in rows])
    distances = 1 - vectors @ np.array(list(MemoryEntry.objects.get(pk=new.pk).embedding))
    nearest_five = np.argsort(distances)[:5]
    expected = {rows[i].pk for i in nearest_five if distances[i] <= 0.5}
    replaced = {row.pk for row in rows if row.superseded_by_id == new.pk}
    assert replaced == expected and replaced  # some meeting notes are within 0.5
    assert all(row.source == "meeting" for row in rows if row.pk in replaced)
    assert all(row.superseded_by_id is None for row in rows if row.source == "news")


# --- the API -----------------------------------------------------------------------------------


def test_the_api_shows_filters_and_restores_replaced_entries(client_for, user, other_user):
    old = learned(user, BULLETS, near(1))
    new = learned(user, PROSE, near(2))
    theirs = learned(other_user, BULLETS, near(1))
    client = client_for(user)
    shown = client.get(f"/api/memory/{old.pk}").json()
    assert shown["superseded_by"] == new.pk and shown["superseded_at"]
    assert [e["id"] for e in client.get("/api/memory?superseded=true").json()["results"]] == [
        old.pk
    ]
    assert [e["id"] for e in client.get("/api/memory?superseded=false").json()["results"]] == [
        new.pk
    ]
    assert client.get("/api/memory").json()["count"] == 2
    assert client.get("/api/memory?superseded=maybe").status_code == 400
    restored = client.post(f"/api/memory/{old.pk}/restore")
    assert restored.status_code == 200, restored.json()
    assert (restored.json()["superseded_by"], restored.json()["superseded_at"]) == (None, None)
    assert active_ids(user) == {old.pk, new.pk}
    again = client.post(f"/api/memory/{old.pk}/restore")
    assert again.status_code == 400 and "not replaced" in again.json()["superseded_by"][0]
    assert client.post(f"/api/memory/{theirs.pk}/restore").status_code == 404
    assert client.post("/api/memory/999999999/restore").status_code == 404
    assert client.get(f"/api/memory/{old.pk}/restore").status_code == 405
