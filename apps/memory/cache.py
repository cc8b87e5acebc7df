"""Each user's memory vectors held in the process that generates, for retrieval in well under 5 ms.

Retrieval runs once per generation in the serving process. Ranking a user's entries inside the
database has to visit every one of their rows (10,000 rows cost about 4 ms of executor time even
as 48-byte binary codes in a covering index), so the serving process keeps each active user's
entry ids, unit context embeddings and origins as NumPy arrays and ranks them exactly (a
10,000 × 384 product is about 1 ms).

Freshness: a database trigger (migrations 0002, 0003, 0005) bumps the user's row in
``memory_memorystamp`` on every insert, update or delete of their entries, bulk deletes and
embedding updates included, and logs which entries each version touched
(``memory_memorychange``). Each retrieval reads that one row by primary key. A cached copy at an
older version is brought up to date by reading just the entries changed since (one query: the
log, then those rows that are still there and embedded), so a refresh costs O(changes), not
O(entries): rows are appended to a per-user buffer that is never rewritten (so a published copy
stays valid for the threads still ranking with it) and replaced or deleted rows are only masked
out, until a quarter of the rows are dead and the live ones are compacted. A copy older than the
log (or after a bulk change) loads the user's memory again (in binary, one query). Entries still
waiting for their embedding are not retrievable, exactly as in the database, nor are entries
a newer one replaced (superseded): replacing or restoring one is an update, so the copy masks it
out or reads it back like any other change. The cache is an LRU bounded by
``ATTUNE_MEMORY_CACHE_BYTES``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from django.conf import settings
from django.db import connection

from apps.common.models import EMBEDDING_DIMENSIONS
from apps.memory.models import MemoryChange, MemoryEntry

_TABLE = MemoryEntry._meta.db_table
_STAMP = "SELECT version, logged_from FROM memory_memorystamp WHERE user_id = %s"
# Retrievable rows (``models.RETRIEVABLE``): ``embedding_bits IS NOT NULL`` is ``embedding IS
# NOT NULL`` (generated from it) and, with ``superseded_by_id IS NULL`` (not replaced), is the
# condition of the partial covering index, which answers the id list alone.
_RETRIEVABLE = "e.embedding_bits IS NOT NULL AND e.superseded_by_id IS NULL"
# One aggregate node: the four arrays see the rows in the same order (no sort needed).
_AGGREGATES = """array_agg(e.id), array_agg(e.origin = %(own)s), array_agg(e.preference),
       string_agg(vector_send(e.embedding), ''::bytea)"""
_ENTRIES = f"""
SELECT {_AGGREGATES}
FROM {_TABLE} e WHERE e.user_id = %(user_id)s AND {_RETRIEVABLE}
"""
# The entries changed after version ``since`` (from the log), and those of them that are
# retrievable now; ``logged_from`` in the same snapshot says whether the log still reaches back.
_CHANGED = f"""
WITH changed AS (
    SELECT DISTINCT entry_id FROM {MemoryChange._meta.db_table}
    WHERE user_id = %(user_id)s AND version > %(since)s
)
SELECT (SELECT logged_from FROM memory_memorystamp WHERE user_id = %(user_id)s),
       (SELECT array_agg(entry_id) FROM changed), {_AGGREGATES}
FROM {_TABLE} e
WHERE e.user_id = %(user_id)s AND {_RETRIEVABLE}
  AND e.id IN (SELECT entry_id FROM changed)
"""
# vector_send: int16 dimension, int16 unused, then the values as big-endian float4
_SENT = np.dtype([("dim", ">i2"), ("unused", ">i2"), ("values", ">f4", (EMBEDDING_DIMENSIONS,))])


class Rows:
    """Append-only storage of one user's copy: ``fill`` hands each refresh its own region under
    a lock, and a written row never changes, so every published :class:`UserMemory` (a prefix of
    the arrays, with its own mask) stays valid while other threads extend the storage."""

    def __init__(self, capacity: int) -> None:
        self.ids = np.zeros(capacity, np.int64)
        self.vectors = np.zeros((capacity, EMBEDDING_DIMENSIONS), np.float32)
        self.own = np.zeros(capacity, bool)
        self.used = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.vectors.nbytes + self.own.nbytes

    def fill(self, ids: np.ndarray, vectors: np.ndarray, own: np.ndarray) -> int | None:
        """Append the rows; their first position (None: no room left)."""
        with self._lock:
            start = self.used
            if start + len(ids) > len(self.ids):
                return None
            self.used += len(ids)
        end = start + len(ids)
        self.ids[start:end], self.vectors[start:end], self.own[start:end] = ids, vectors, own
        return start


@dataclass(frozen=True)
class UserMemory:
    """One user's retrievable entries as of version ``stamp`` of ``memory_memorystamp``: row
    ``i`` holds an entry id, its unit embedding, whether the user wrote it and its preference
    text; rows where ``alive`` is False (None: all alive) are replaced or deleted ones."""

    stamp: int
    ids: np.ndarray
    vectors: np.ndarray
    written_by_user: np.ndarray
    preferences: tuple[str, ...]
    alive: np.ndarray | None = None
    rows: Rows | None = field(default=None, compare=False, repr=False)

    @cached_property
    def size(self) -> int:
        """How many entries are retrievable."""
        return len(self.ids) if self.alive is None else int(self.alive.sum())

    @cached_property
    def nbytes(self) -> int:
        arrays = self.rows.nbytes if self.rows is not None else self.vectors.nbytes
        return arrays + sum(len(text) + 56 for text in self.preferences)

    def live(self) -> UserMemory:
        """The live rows only, compacted into storage of their own (with room to grow)."""
        keep = slice(None) if self.alive is None else self.alive
        return _stored(
            self.stamp,
            self.ids[keep],
            self.vectors[keep],
            self.written_by_user[keep],
            tuple(t for t, k in zip(self.preferences, self._alive(), strict=True) if k),
        )

    def _alive(self) -> list[bool]:
        return [True] * len(self.ids) if self.alive is None else self.alive.tolist()


def _stored(
    stamp: int, ids: np.ndarray, vectors: np.ndarray, own: np.ndarray, texts: tuple[str, ...]
) -> UserMemory:
    """A memory of these rows in new storage with room for a quarter more (at least 64)."""
    rows = Rows(len(ids) + max(64, len(ids) // 4))
    rows.fill(ids, vectors, own)
    n = len(ids)
    return UserMemory(stamp, rows.ids[:n], rows.vectors[:n], rows.own[:n], texts, None, rows)


class MemoryCache:
    """Per-process LRU of :class:`UserMemory` by user id, bounded in bytes; thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._users: OrderedDict[int, UserMemory] = OrderedDict()
        self._bytes = 0  # sum of the cached memories' nbytes
        self._lock = threading.Lock()
        self.loads = 0
        self.refreshes = 0

    def get(self, user_id: int) -> UserMemory:
        """The user's current memory: from the cache when its version is current, else brought
        up to date with the entries changed since (or loaded)."""
        version, logged_from = current_stamp(user_id)
        with self._lock:
            cached = self._users.get(user_id)
            if cached is not None and cached.stamp == version:
                self._users.move_to_end(user_id)
                return cached
        memory = None
        if cached is not None and logged_from <= cached.stamp < version:
            memory = refresh(cached, user_id, version)
        refreshed = memory is not None
        if memory is None:
            memory = load(user_id, version)
        with self._lock:
            self.refreshes += refreshed
            self.loads += not refreshed
            if (replaced := self._users.pop(user_id, None)) is not None:
                self._bytes -= replaced.nbytes
            self._users[user_id] = memory
            self._bytes += memory.nbytes
            while len(self._users) > 1 and self._bytes > self.max_bytes:
                self._bytes -= self._users.popitem(last=False)[1].nbytes
        return memory

    def size(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._users.clear()
            self._bytes = 0


def current_stamp(user_id: int) -> tuple[int, int]:
    """The user's memory version and the version the change log starts after; (0, 0) before
    any change."""
    with connection.cursor() as cursor:
        cursor.execute(_STAMP, [user_id])
        row = cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _fetch(sql: str, params: dict) -> tuple:
    """One row of ``sql`` in binary (raw bytes, C-parsed arrays): that needs a
    server-side-binding cursor; Django's are client-side."""
    from psycopg import Cursor

    connection.ensure_connection()
    with Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return cursor.fetchone()


def _arrays(
    ids: list | None, own: list, texts: list, blob: bytes
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """Aggregated rows as arrays of ids, unit vectors, origins, and the texts."""
    if not ids:
        empty = np.zeros((0, EMBEDDING_DIMENSIONS), np.float32)
        return np.zeros(0, np.int64), empty, np.zeros(0, bool), ()
    rows = np.frombuffer(bytes(blob), dtype=_SENT)
    if (rows["dim"] != EMBEDDING_DIMENSIONS).any():
        raise ValueError("memory entries with embeddings of another dimension")
    vectors = rows["values"].astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= np.where(norms > 0, norms, 1.0)
    return np.asarray(ids, np.int64), vectors, np.asarray(own, bool), tuple(texts)


def load(user_id: int, stamp: int) -> UserMemory:
    """The user's embedded entries in one row: arrays of ids, origins and texts, and their
    vectors concatenated in pgvector's binary format (``vector_send``) for NumPy to read."""
    row = _fetch(_ENTRIES, {"own": MemoryEntry.Origin.USER, "user_id": user_id})
    return _stored(stamp, *_arrays(*row))


def refresh(cached: UserMemory, user_id: int, stamp: int) -> UserMemory | None:
    """``cached`` with the entries changed since its version masked out and those of them that
    are retrievable now (inserted, updated or embedded since) appended; None when the change log
    no longer reaches back to ``cached`` (then the memory is loaded again)."""
    params = {"own": MemoryEntry.Origin.USER, "user_id": user_id, "since": cached.stamp}
    logged_from, changed, *row = _fetch(_CHANGED, params)
    if logged_from is None or logged_from > cached.stamp:
        return None
    ids, vectors, own, texts = _arrays(*row)
    gone = np.isin(cached.ids, np.asarray(changed or [], np.int64))
    if not gone.any() and not len(ids):
        return replace(cached, stamp=stamp)
    alive = np.ones(len(cached.ids), bool) if cached.alive is None else cached.alive.copy()
    alive[gone] = False
    if len(alive) - int(alive.sum()) > len(alive) // 4 + 64 or cached.rows is None:
        return _appended(replace(cached, alive=alive).live(), stamp, ids, vectors, own, texts)
    return _appended(replace(cached, alive=alive), stamp, ids, vectors, own, texts)


def _appended(
    memory: UserMemory,
    stamp: int,
    ids: np.ndarray,
    vectors: np.ndarray,
    own: np.ndarray,
    texts: tuple[str, ...],
) -> UserMemory:
    """``memory`` at version ``stamp`` with these rows added to its storage (compacted into new
    storage when it is full)."""
    rows = memory.rows
    start = rows.fill(ids, vectors, own) if rows is not None else None
    if start is None:
        memory = memory.live()
        rows, start = memory.rows, memory.rows.fill(ids, vectors, own)  # type: ignore[union-attr]
    assert rows is not None and start is not None
    end, before = start + len(ids), len(memory.ids)
    alive = np.ones(end, bool)
    alive[:before] = memory.alive if memory.alive is not None else True
    alive[before:start] = False  # rows another refresh appended meanwhile
    padding = ("",) * (start - before)
    return UserMemory(
        stamp,
        rows.ids[:end],
        rows.vectors[:end],
        rows.own[:end],
        memory.preferences + padding + texts,
        None if alive.all() else alive,
        rows,
    )


_cache: MemoryCache | None = None
_cache_lock = threading.Lock()


def memory_cache() -> MemoryCache:
    """This process's cache (created on first use with the configured bound)."""
    global _cache
    with _cache_lock:
        if _cache is None:
            _cache = MemoryCache(settings.ATTUNE_MEMORY_CACHE_BYTES)
        return _cache
