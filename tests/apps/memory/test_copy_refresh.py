"""The serving process's copy of a user's memory, refreshed from the change log."""

from __future__ import annotations

import random

import numpy as np
import pytest

from apps.memory.cache import MemoryCache, UserMemory, current_stamp, load, refresh
from apps.memory.models import CHANGE_LOG_VERSIONS, RETRIEVABLE, MemoryChange, MemoryEntry
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db
ORIGINS = [MemoryEntry.Origin.INFERRED, MemoryEntry.Origin.USED, MemoryEntry.Origin.USER]


def unit(rng: random.Random) -> list[float]:
    vector = np.array([rng.gauss(0, 1) for _ in range(384)], dtype=np.float32)
    return (vector / np.linalg.norm(vector)).tolist()


def contents(memory: UserMemory) -> dict[int, tuple[bytes, bool, str]]:
    """The copy's live rows by entry id (their order is free)."""
    memory = memory.live()
    assert len(set(memory.ids.tolist())) == len(memory.ids)  # each entry once
    rows = zip(memory.ids, memory.vectors, memory.written_by_user, memory.preferences, strict=True)
    return {int(pk): (vector.tobytes(), bool(own), text) for pk, vector, own, text in rows}


def change(user, rng: random.Random) -> None:
    """One random write of the user's memory, as the services, the embedding task or a bulk
    statement make them."""
    ids = list(MemoryEntry.objects.filter(user=user).values_list("pk", flat=True))
    kinds = ["pending", "text", "embed", "unembed", "delete", "bulk", "replace", "restore"]
    kind = rng.choice(["insert"] * 6 + kinds)
    if kind in {"insert", "pending"} or not ids:
        MemoryEntry.objects.create(
            user=user, context_text="c", preference=f"p{rng.random():.3f}",
            origin=rng.choice(ORIGINS), embedding=unit(rng) if kind != "pending" else None,
        )  # fmt: skip
    elif kind == "text":
        MemoryEntry.objects.filter(pk=rng.choice(ids)).update(
            preference=f"q{rng.random():.3f}", origin=rng.choice(ORIGINS)
        )
    elif kind == "embed":
        MemoryEntry.objects.filter(pk=rng.choice(ids)).update(embedding=unit(rng))
    elif kind == "unembed":
        MemoryEntry.objects.filter(pk=rng.choice(ids)).update(embedding=None)
    elif kind == "replace":  # superseded by a newer entry: kept, not retrievable
        older, newer = sorted(rng.sample(ids, 2)) if len(ids) > 1 else (ids[0], None)
        MemoryEntry.objects.filter(pk=older).update(superseded_by_id=newer)
    elif kind == "restore":
        MemoryEntry.objects.filter(pk=rng.choice(ids)).update(superseded_by=None)
    elif kind == "delete":
        MemoryEntry.objects.filter(pk=rng.choice(ids)).delete()
    else:
        MemoryEntry.objects.filter(pk__in=rng.sample(ids, min(3, len(ids)))).delete()


def test_the_copy_equals_a_full_reload_after_inserts_updates_and_deletes(user, other_user):
    rng = random.Random(15)
    cache = MemoryCache(max_bytes=1 << 30)
    for _ in range(20):
        MemoryEntry.objects.create(user=user, context_text="c", preference="p", origin="used",
                                   embedding=unit(rng))  # fmt: skip
    cache.get(user.pk)
    for _ in range(150):
        change(user, rng)
        change(other_user, rng)
        if rng.random() < 0.5:
            change(user, rng)  # two changes between reads now and then
        copy = cache.get(user.pk)
        version, _ = current_stamp(user.pk)
        assert copy.stamp == version
        assert contents(copy) == contents(load(user.pk, version))
        assert set(contents(copy)) == set(
            MemoryEntry.objects.filter(RETRIEVABLE, user=user).values_list("pk", flat=True)
        )
    assert cache.loads == 1 and cache.refreshes > 100  # never loaded again
    assert MemoryEntry.objects.filter(user=user, superseded_by__isnull=False).exists()
    assert copy.size > 10 and copy.live().written_by_user.any()


def test_a_copy_older_than_the_log_or_a_bulk_change_loads_the_memory_again(user):
    rng = random.Random(1)
    cache = MemoryCache(max_bytes=1 << 30)
    kept = MemoryEntry.objects.create(user=user, context_text="c", preference="p", origin="used",
                                      embedding=unit(rng))  # fmt: skip
    cache.get(user.pk)
    for i in range(CHANGE_LOG_VERSIONS + 1):
        MemoryEntry.objects.filter(pk=kept.pk).update(preference=f"p{i}")
    versions = set(MemoryChange.objects.filter(user_id=user.pk).values_list("version", flat=True))
    assert len(versions) == CHANGE_LOG_VERSIONS  # the log keeps the newest versions only
    assert cache.get(user.pk).live().preferences == (f"p{CHANGE_LOG_VERSIONS}",)
    assert (cache.loads, cache.refreshes) == (2, 0)
    MemoryEntry.objects.bulk_create(
        MemoryEntry(user=user, context_text="c", preference="bulk", origin="used",
                    embedding=unit(rng))
        for _ in range(1001)
    )  # fmt: skip
    assert not MemoryChange.objects.filter(user_id=user.pk).exists()  # too many to log
    assert cache.get(user.pk).size == 1002 and cache.loads == 3
    MemoryEntry.objects.filter(pk=kept.pk).delete()
    assert cache.get(user.pk).size == 1001 and cache.refreshes == 1
    other = UserFactory()
    assert cache.get(other.pk).size == 0


def test_a_published_copy_never_changes_and_two_refreshes_from_it_both_hold(user):
    """Threads refresh the same copy at once: each appends to a region of its own."""
    rng = random.Random(2)
    for _ in range(8):
        MemoryEntry.objects.create(user=user, context_text="c", preference="p", origin="used",
                                   embedding=unit(rng))  # fmt: skip
    base = load(user.pk, current_stamp(user.pk)[0])
    before = contents(base)
    first_version, second_version = [], []
    for versions in (first_version, second_version):
        for _ in range(3):
            change(user, rng)
        versions.append(current_stamp(user.pk)[0])
    first = refresh(base, user.pk, first_version[0])
    second = refresh(base, user.pk, second_version[0])  # from the same copy, later
    assert first is not None and second is not None and first.rows is second.rows
    assert contents(second) == contents(load(user.pk, second_version[0]))
    assert contents(base) == before and len(first.ids) <= len(second.ids)
    assert contents(refresh(first, user.pk, second_version[0])) == contents(second)
