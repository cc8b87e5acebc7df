"""Reads for CIPHER memory: retrieval at generation time (the API lists through its viewset).

:func:`preference_for` is what generation calls: the user's ``k`` nearest entries by cosine
distance of their context embeddings, in the precedence order of ``apps.memory.cipher`` (a
preference the user wrote for a similar context comes first), aggregated into one phrase. The
query embedding is computed by ``workers.embeddings`` (torch) when a text is given, so that is
for the generation worker; the web side passes an embedding or calls :func:`nearest` only.

:func:`nearest` ranks exactly over the user's entries held by this process
(``apps.memory.cache``: one primary-key read per call while they are current);
:func:`nearest_in_database` ranks inside PostgreSQL instead (no cache; Hamming candidates from
the binary codes, then exact cosine), for one-off reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from apps.accounts.models import User
from apps.memory.cache import memory_cache
from apps.memory.cipher import (
    Conditioning,
    Neighbor,
    Rival,
    condition,
    fallback,
    rank,
    within_reach,
)
from apps.memory.inference import InferenceBackend, InferenceError, backend_from_settings
from apps.memory.models import MemoryEntry, PendingInference

_TABLE = MemoryEntry._meta.db_table
# Active (retrievable) entries: embedded, not replaced; the partial indexes' condition.
ACTIVE = "embedding_bits IS NOT NULL AND superseded_by_id IS NULL"
# Candidates: the user's active entries nearest by Hamming distance of the binary-quantized
# embeddings (an index-only scan of mem_entry_user_active), plus the k nearest of those they
# wrote (mem_entry_user_written_active); then exact cosine distance on the full vectors, in the
# precedence order of apps.memory.cipher.
_NEAREST = f"""
WITH candidates AS (
    (SELECT id FROM {_TABLE}
     WHERE user_id = %(user_id)s AND {ACTIVE}
     ORDER BY embedding_bits <~> binary_quantize(%(query)s::vector) LIMIT %(candidates)s)
    UNION
    (SELECT id FROM {_TABLE}
     WHERE user_id = %(user_id)s AND origin = %(user_origin)s AND {ACTIVE}
     ORDER BY embedding_bits <~> binary_quantize(%(query)s::vector) LIMIT %(k)s)
), scored AS (
    SELECT e.id, e.preference, e.origin = %(user_origin)s AS own,
           e.embedding <=> %(query)s::vector AS distance
    FROM {_TABLE} e JOIN candidates USING (id)
)
SELECT id, preference, distance, own FROM scored
ORDER BY (own AND distance <= %(threshold)s) DESC, distance, id DESC
LIMIT %(k)s
"""


# The k active entries of the entry's user nearest to its context, other than itself (the same
# Hamming candidates, then exact cosine distance), for superseding (apps.memory.cipher).
_RIVALS = f"""
WITH placed AS (
    SELECT user_id, embedding, embedding_bits FROM {_TABLE}
    WHERE id = %(id)s AND embedding IS NOT NULL
), candidates AS (
    SELECT id FROM {_TABLE}
    WHERE user_id = (SELECT user_id FROM placed) AND {ACTIVE} AND id <> %(id)s
    ORDER BY embedding_bits <~> (SELECT embedding_bits FROM placed) LIMIT %(candidates)s
)
SELECT e.id, e.preference, e.origin = %(user_origin)s, e.embedding <=> p.embedding AS distance
FROM {_TABLE} e JOIN candidates USING (id), placed p
ORDER BY distance, e.id DESC LIMIT %(k)s
"""


def embed_context(text: str) -> list[float]:
    """The MiniLM embedding of a context text, as ``Interaction.prompt`` is embedded (torch)."""
    from workers import embeddings

    return embeddings.encode([text], settings.ATTUNE_EMBEDDING_MODEL)[0]


def nearest(user: User | int, embedding: Sequence[float], k: int | None = None) -> list[Neighbor]:
    """The user's ``k`` nearest entries to ``embedding``, in precedence order (exact)."""
    k = k or settings.ATTUNE_MEMORY_TOP_K
    threshold = settings.ATTUNE_MEMORY_PRECEDENCE_DISTANCE
    memory = memory_cache().get(user if isinstance(user, int) else user.pk)
    if not memory.size:
        return []
    query = np.asarray(embedding, dtype=np.float32)
    query /= np.linalg.norm(query) or 1.0
    distances = 1.0 - memory.vectors @ query
    if memory.alive is not None:  # rows of replaced or deleted entries
        distances[~memory.alive] = np.inf
    nearest_k = (
        np.argpartition(distances, k)[:k] if len(distances) > k else np.arange(k)[: len(distances)]
    )
    in_charge = np.flatnonzero(memory.written_by_user & (distances <= threshold))
    candidates = np.union1d(nearest_k, in_charge)
    candidates = candidates[np.isfinite(distances[candidates])]
    neighbors = [
        Neighbor(
            int(memory.ids[i]),
            memory.preferences[i],
            float(distances[i]),
            bool(memory.written_by_user[i]),
        )
        for i in candidates
    ]
    return rank(neighbors, k, threshold)


def nearest_in_database(
    user: User | int, embedding: Sequence[float], k: int | None = None
) -> list[Neighbor]:
    """:func:`nearest` computed by PostgreSQL alone, in the same precedence order.

    Exact for a user with at most ``ATTUNE_MEMORY_CANDIDATES`` entries; beyond that the exact
    ranking covers the candidates nearest by Hamming distance (the true top ``k`` on real
    embeddings; see ``bench/memory_retrieval.py`` for the recall measured).
    """
    params = {
        "query": "[" + ",".join(f"{float(x):.8g}" for x in embedding) + "]",
        "user_id": user if isinstance(user, int) else user.pk,
        "user_origin": MemoryEntry.Origin.USER,
        "threshold": settings.ATTUNE_MEMORY_PRECEDENCE_DISTANCE,
        "k": k or settings.ATTUNE_MEMORY_TOP_K,
        "candidates": max(settings.ATTUNE_MEMORY_CANDIDATES, k or settings.ATTUNE_MEMORY_TOP_K),
    }
    with connection.cursor() as cursor:
        cursor.execute(_NEAREST, params)
        rows = cursor.fetchall()
    return [Neighbor(pk, text, float(distance), bool(own)) for pk, text, distance, own in rows]


def rivals_of(entry: MemoryEntry, k: int | None = None) -> list[Rival]:
    """The ``k`` (``ATTUNE_MEMORY_TOP_K``) active entries of the entry's user nearest to its
    context, nearest first, each marked ``newer`` when stored after it; none while the entry has
    no embedding. Reads the stored vector (so call it after the entry is saved), in PostgreSQL:
    it runs once per stored entry, where loading the user's memory into a copy would not pay."""
    params = {
        "id": entry.pk,
        "user_origin": MemoryEntry.Origin.USER,
        "k": k or settings.ATTUNE_MEMORY_TOP_K,
        "candidates": max(settings.ATTUNE_MEMORY_CANDIDATES, k or settings.ATTUNE_MEMORY_TOP_K),
    }
    with connection.cursor() as cursor:
        cursor.execute(_RIVALS, params)
        rows = cursor.fetchall()
    return [
        Rival(pk, text, float(distance), bool(own), newer=pk > entry.pk)
        for pk, text, own, distance in rows
    ]


def preference_for(
    user: User | int,
    context: str | Sequence[float],
    k: int | None = None,
    backend: InferenceBackend | None = None,
) -> Conditioning:
    """The conditioning for a generation in ``context`` (a text, or its embedding).

    Record ``preference`` and ``memory_ids`` on the Interaction (``conditioning_preference``,
    ``memory_entry_ids``). An empty memory gives an empty preference. A backend that cannot
    aggregate (or is not configured) never fails it: ``degraded`` says why, and the first
    ranked entry is used as it is (``apps.memory.cipher.fallback``).
    """
    embedding = embed_context(context) if isinstance(context, str) else context
    threshold = settings.ATTUNE_MEMORY_PRECEDENCE_DISTANCE
    ranked = within_reach(
        nearest(user, embedding, k), settings.ATTUNE_MEMORY_NEAR_DISTANCE, threshold
    )
    try:
        backend = backend or backend_from_settings()
    except InferenceError as err:
        return fallback(ranked, err.reason)
    return condition(ranked, threshold, backend)


_FAILED = {
    "timeout": "did not answer in time",
    "unreachable": "could not be reached",
    "http_error": "answered with an error",
    "invalid_answer": "gave no usable answer",
    "skipped": "failed moments ago and is resting",
    "not_configured": "is not configured",
}


def degraded_notice(reason: str) -> dict[str, str] | None:
    """The answer's ``attune.memory_degraded`` for a fallback (None when there was none)."""
    if not reason:
        return None
    failed = _FAILED.get(reason, "failed")
    return {
        "reason": reason,
        "fallback": "nearest_entry",
        "message": f"The language model that combines your learned preferences {failed}; "
        "the nearest one was used as it is.",
    }


def waiting_edits(user: User | int) -> QuerySet[PendingInference]:
    """The user's edits still waiting to be learned (their notes), oldest first."""
    user_id = user if isinstance(user, int) else user.pk
    return PendingInference.objects.filter(edit__user_id=user_id).order_by("edit_id")
