"""Each user's memory vectors held in the process that generates, for retrieval in well under 5 ms.

Retrieval runs once per generation in the serving process. Ranking a user's entries inside the
database has to visit every one of their rows (10,000 rows cost about 4 ms of executor time even
as 48-byte binary codes in a covering index), so the serving process keeps each active user's
entry ids, unit context embeddings and origins as NumPy arrays and ranks them exactly (a
10,000 × 384 product is about 1 ms).

Freshness: a database trigger (migrations 0002, 0003) bumps the user's row in
``memory_memorystamp`` on every insert, update or delete of their entries, bulk deletes and
embedding updates included. Each retrieval reads that one row by primary key. A cached copy with
another stamp is brought up to date: after inserts only (an edit teaches one entry) by reading
just the new rows, after any update or delete by loading the user's memory again (in binary, one
query). Entries still waiting for their embedding are not retrievable, exactly as in the
database. The cache is an LRU bounded by ``ATTUNE_MEMORY_CACHE_BYTES``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from django.conf import settings
from django.db import connection

from apps.common.models import EMBEDDING_DIMENSIONS
from apps.memory.models import MemoryEntry

_TABLE = MemoryEntry._meta.db_table
_STAMP = "SELECT version, rewrites FROM memory_memorystamp WHERE user_id = %s"
# One aggregate node: the four arrays see the rows in the same order (no sort needed).
# ``embedding_bits IS NOT NULL`` is ``embedding IS NOT NULL`` (generated from it), and lets the
# partial covering index answer the id list alone.
_ENTRIES = f"""
SELECT array_agg(id), array_agg(origin = %s), array_agg(preference),
       string_agg(vector_send(embedding), ''::bytea)
FROM {_TABLE} WHERE user_id = %s AND embedding_bits IS NOT NULL
"""
_NEW_ENTRIES = _ENTRIES.strip() + " AND id = ANY(%s)"
_IDS = f"SELECT array_agg(id) FROM {_TABLE} WHERE user_id = %s AND embedding_bits IS NOT NULL"
# vector_send: int16 dimension, int16 unused, then the values as big-endian float4
_SENT = np.dtype([("dim", ">i2"), ("unused", ">i2"), ("values", ">f4", (EMBEDDING_DIMENSIONS,))])


@dataclass(frozen=True)
class UserMemory:
    """One user's retrievable entries: ids, unit embeddings (rows), whether the user wrote each,
    and their preference texts; ``stamp`` is the version of ``memory_memorystamp`` they were
    read at."""

    stamp: tuple[int, int]
    ids: np.ndarray
    vectors: np.ndarray
    written_by_user: np.ndarray
    preferences: tuple[str, ...]

    @cached_property
    def nbytes(self) -> int:
        arrays = self.ids.nbytes + self.vectors.nbytes + self.written_by_user.nbytes
        return arrays + sum(len(text) + 56 for text in self.preferences)


class MemoryCache:
    """Per-process LRU of :class:`UserMemory` by user id, bounded in bytes; thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._users: OrderedDict[int, UserMemory] = OrderedDict()
        self._bytes = 0  # sum of the cached memories' nbytes
        self._lock = threading.Lock()
        self.loads = 0
        self.extensions = 0

    def get(self, user_id: int) -> UserMemory:
        """The user's current memory: from the cache when its stamp is current, extended by the
        new rows after inserts only, else loaded."""
        stamp = current_stamp(user_id)
        with self._lock:
            cached = self._users.get(user_id)
            if cached is not None and cached.stamp == stamp:
                self._users.move_to_end(user_id)
                return cached
        memory = None
        if cached is not None and cached.stamp[1] == stamp[1]:  # inserts only since
            memory = extend(cached, user_id, stamp)
        extended = memory is not None
        if memory is None:
            memory = load(user_id, stamp)
        with self._lock:
            self.extensions += extended
            self.loads += not extended
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
    """The user's memory versions: (all changes, updates and deletes); (0, 0) before any."""
    with connection.cursor() as cursor:
        cursor.execute(_STAMP, [user_id])
        row = cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _read(sql: str, params: list) -> UserMemory | None:
    """Rows of one aggregate query as arrays; None when it matched none (stamp left unset)."""
    from psycopg import Cursor

    connection.ensure_connection()
    # Binary results (raw bytes, C-parsed arrays) need a server-side-binding cursor; Django's
    # are client-side.
    with Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        ids, own, texts, blob = cursor.fetchone()
    if not ids:
        return None
    rows = np.frombuffer(bytes(blob), dtype=_SENT)
    if (rows["dim"] != EMBEDDING_DIMENSIONS).any():
        raise ValueError("memory entries with embeddings of another dimension")
    vectors = rows["values"].astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= np.where(norms > 0, norms, 1.0)
    return UserMemory(
        (0, 0), np.asarray(ids, np.int64), vectors, np.asarray(own, bool), tuple(texts)
    )


def load(user_id: int, stamp: tuple[int, int]) -> UserMemory:
    """The user's embedded entries in one row: arrays of ids, origins and texts, and their
    vectors concatenated in pgvector's binary format (``vector_send``) for NumPy to read."""
    memory = _read(_ENTRIES, [MemoryEntry.Origin.USER, user_id])
    if memory is None:
        empty = np.zeros((0, EMBEDDING_DIMENSIONS), np.float32)
        return UserMemory(stamp, np.zeros(0, np.int64), empty, np.zeros(0, bool), ())
    return replace(memory, stamp=stamp)


def extend(cached: UserMemory, user_id: int, stamp: tuple[int, int]) -> UserMemory | None:
    """``cached`` plus the user's rows it lacks (after inserts only), minus any gone; None when
    most of the memory is new (a full load is then cheaper)."""
    with connection.cursor() as cursor:
        cursor.execute(_IDS, [user_id])
        now = np.asarray(cursor.fetchone()[0] or [], np.int64)
    new = np.setdiff1d(now, cached.ids, assume_unique=True)
    if len(new) > len(now) // 2:
        return None
    keep = np.isin(cached.ids, now, assume_unique=True)
    added = (
        _read(_NEW_ENTRIES, [MemoryEntry.Origin.USER, user_id, new.tolist()]) if len(new) else None
    )
    parts = [
        UserMemory(
            stamp,
            cached.ids[keep],
            cached.vectors[keep],
            cached.written_by_user[keep],
            tuple(t for t, k in zip(cached.preferences, keep, strict=True) if k),
        )
    ]
    if added is not None:
        parts.append(added)
    return UserMemory(
        stamp,
        np.concatenate([p.ids for p in parts]),
        np.concatenate([p.vectors.reshape(-1, EMBEDDING_DIMENSIONS) for p in parts]),
        np.concatenate([p.written_by_user for p in parts]),
        tuple(t for p in parts for t in p.preferences),
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
