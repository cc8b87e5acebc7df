"""A user with a long history, filled in SQL in seconds, and request timings, for the tests and
measurements of lists and pages at size (``lists_at_size.py``).

The shape follows issue 15's heaviest user: interactions with texts of realistic length and an
embedding each, ratings on ~30 % of them, edits on ~10 %, comparisons on ~5 %, and a memory entry
per changed edit. Times are spread one minute apart, newest last; ids grow with time, as in life.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection

from core.world.sources import SOURCES

POOL = 64  # distinct random embeddings, reused (the lists never rank by them)

_INTERACTIONS = """
WITH pool AS (
    SELECT i, (SELECT array_agg(random()::real) FROM generate_series(1, 384) WHERE i >= 0)::vector
        AS v
    FROM generate_series(0, %(pool)s - 1) i
)
INSERT INTO feedback_interaction (user_id, prompt, messages, source, output, model_id,
    adapter_version, preference_coefficients, memory_entry_ids, conditioning_preference,
    created_at, embedding, embedding_model, embedding_dim, embedded_at)
SELECT %(user)s,
    'Summarize this ' || (%(sources)s::text[])[1 + g %% %(n_sources)s] || ' item ' || g || ': '
        || repeat('The committee met on Tuesday and agreed on the plan. ', 10),
    '[]'::jsonb, (%(sources)s::text[])[1 + g %% %(n_sources)s],
    repeat('A short, friendly summary with the main points and a closing line. ', 6),
    'attune-style', '', '{}'::jsonb, '{}', 'brief, bullet points',
    %(start)s::timestamptz + g * interval '1 minute',
    pool.v, 'all-MiniLM-L6-v2', 384, %(start)s::timestamptz + g * interval '1 minute'
FROM generate_series(1, %(n)s) g JOIN pool ON pool.i = g %% %(pool)s
"""

_RATINGS = """
INSERT INTO feedback_rating (user_id, interaction_id, thumbs_up, stars, comment, created_at,
    updated_at)
SELECT user_id, id, CASE WHEN id %% 2 = 0 THEN id %% 3 = 0 END,
    CASE WHEN id %% 2 = 1 THEN 1 + id %% 5 END, '', created_at + interval '10 seconds',
    created_at + interval '10 seconds'
FROM feedback_interaction WHERE user_id = %(user)s AND id %% 10 < 3
"""

_EDITS = """
INSERT INTO feedback_edit (user_id, interaction_id, original, edited, distance, diff, created_at)
SELECT user_id, id, output, '- ' || output || ' Thanks!', 2,
    jsonb_build_array(jsonb_build_object('op', 'insert', 'text', '-'),
        jsonb_build_object('op', 'equal', 'text', output),
        jsonb_build_object('op', 'insert', 'text', 'Thanks!')),
    created_at + interval '20 seconds'
FROM feedback_interaction WHERE user_id = %(user)s AND id %% 10 = 5
"""

_COMPARISONS = """
INSERT INTO feedback_comparison (user_id, prompt, source, response_a, response_b, interaction_a_id,
    interaction_b_id, choice, created_at, updated_at, embedding, embedding_model, embedding_dim,
    embedded_at)
SELECT user_id, prompt, source, output, output || ' (b)', id, NULL,
    (ARRAY['a', 'b', 'tie'])[1 + id %% 3], created_at + interval '30 seconds',
    created_at + interval '30 seconds', embedding, embedding_model, embedding_dim, embedded_at
FROM feedback_interaction WHERE user_id = %(user)s AND id %% 20 = 7
"""

_MEMORY = """
INSERT INTO memory_memoryentry (user_id, context_text, source, preference, origin, edit_id,
    created_at, updated_at, embedding, embedding_model, embedding_dim, embedded_at)
SELECT e.user_id, i.prompt, i.source, 'bullet points, brief, a friendly closing line',
    'inferred', e.id, e.created_at + interval '5 seconds', e.created_at + interval '5 seconds',
    i.embedding, i.embedding_model, i.embedding_dim, i.embedded_at
FROM feedback_edit e JOIN feedback_interaction i ON i.id = e.interaction_id
WHERE e.user_id = %(user)s AND e.distance > 0
"""


def fill_history(user_id: int, interactions: int, start: str = "2025-01-01T00:00:00Z") -> None:
    """Give ``user_id`` ``interactions`` interactions and the feedback on them (see above)."""
    names = list(SOURCES)
    params = {
        "user": user_id,
        "n": interactions,
        "start": start,
        "pool": POOL,
        "sources": names,
        "n_sources": len(names),
    }
    with connection.cursor() as cursor:
        for statement in (_INTERACTIONS, _RATINGS, _EDITS, _COMPARISONS, _MEMORY):
            cursor.execute(statement, params)


@dataclass(frozen=True)
class Timing:
    p50_ms: float
    p99_ms: float
    requests: int
    bytes: int

    def __str__(self) -> str:
        return f"p50 {self.p50_ms:7.1f} ms  p99 {self.p99_ms:7.1f} ms  ({self.bytes / 1024:.0f} KB)"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timing(
    get: Callable[[], tuple[int, int]], requests: int = 40, concurrency: int = 1, warm: int = 3
) -> Timing:
    """p50 / p99 of ``requests`` calls of ``get`` (which answers its status and body size),
    ``concurrency`` at a time, after ``warm`` calls; every answer must be a 200."""
    for _ in range(warm):
        status, size = get()
        assert status == 200, status
    times: list[float] = []
    lock = threading.Lock()
    share = requests // concurrency

    def worker() -> None:
        from django.db import connections

        try:
            for _ in range(share):
                began = time.perf_counter()
                status, _size = get()
                took = time.perf_counter() - began
                assert status == 200, status
                with lock:
                    times.append(took * 1000)
        finally:
            if concurrency > 1:
                connections.close_all()

    if concurrency == 1:
        worker()
    else:
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(times) == share * concurrency, "a request failed"
    return Timing(statistics.median(times), percentile(times, 0.99), len(times), size)
