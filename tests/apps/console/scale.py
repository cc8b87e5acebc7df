"""A console-sized world and the console's timings on it (a script, not a test module).

    ATTUNE_VAR_DIR=/tmp/var-console PYTHONPATH=.:platform .venv/bin/python \
        tests/apps/console/scale.py fill --users 10000 --interactions 1000000
    … tests/apps/console/scale.py bench --requests 40

``fill`` writes with set-based SQL (statements over ``generate_series``, as a COPY fill does:
the triggers see one statement per table): Zipf activity (a few users with 50,000 interactions,
most with a handful), ratings on 30% of interactions, edits on 10%, comparisons on 5%, a memory
entry per changed edit, two adapter versions for the active users, finished fit jobs, an active
CoPL version with an embedding per user, audit entries. ``bench`` times every console page with
Django's test client (warm, sequential) and prints p50/p99 in ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HEAVY = 50_000
N_HEAVY = 3  # users with HEAVY interactions each
SLOPE = 0.9  # Zipf exponent of activity by rank
DIFF = (  # an edit's word diff, as feedback.services stores it
    """'[{"op": "insert", "text": "Big news!"}, {"op": "equal", "text": "The council met on"},'"""
    """ || ' {"op": "delete", "text": "Monday"}, {"op": "insert", "text": "Friday"}]'"""
)


def activity(users: int, interactions: int) -> float:
    """The Zipf scale A: the first N_HEAVY users have HEAVY interactions, the others
    min(HEAVY, A / rank**SLOPE) + 3, about ``interactions`` in all."""
    low, high = 1.0, float(interactions)
    for _ in range(60):
        mid = (low + high) / 2
        total = sum(
            HEAVY if r <= N_HEAVY else min(HEAVY, int(mid / r**SLOPE)) + 3
            for r in range(1, users + 1)
        )
        low, high = (mid, high) if total < interactions else (low, mid)
    return low


def fill(cursor, users: int, interactions: int, prefix: str = "scale") -> dict[str, float]:
    """Fill the database behind ``cursor``; seconds per table."""
    scale = activity(users, interactions)
    mine = f"(SELECT id FROM accounts_user WHERE username LIKE '{prefix}-%%')"
    steps = {
        "users": f"""
INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email,
    is_staff, is_active, date_joined, external_id)
SELECT '!', false, '{prefix}-' || g, '', '', '{prefix}-' || g || '@example.test', false, true,
    now() - interval '90 days', ''
FROM generate_series(1, %(users)s) g""",
        "interactions": f"""
INSERT INTO feedback_interaction (user_id, prompt, messages, source, output, model_id,
    adapter_version, preference_coefficients, memory_entry_ids, conditioning_preference,
    embedding_model, created_at)
SELECT u.id, 'Summarize news item ' || g || ': the council met on Monday.', '[]',
    (ARRAY['news', 'email', 'forum', 'review', 'paper'])[1 + g %% 5],
    'The council met on Monday and approved the new tram line.', 'attune/style-lm', '', '{{}}',
    '{{}}', '', '', now() - (u.n - g) * interval '1 minute'
FROM (SELECT id, CASE WHEN rank <= {N_HEAVY} THEN {HEAVY}
             ELSE least({HEAVY}, floor(%(scale)s / rank ^ {SLOPE}))::int + 3 END AS n
      FROM (SELECT id, row_number() OVER (ORDER BY id) AS rank FROM {mine} AS m) AS ranked) AS u
CROSS JOIN LATERAL generate_series(1, u.n) AS g""",
        "ratings": f"""
INSERT INTO feedback_rating (user_id, interaction_id, stars, comment, created_at, updated_at)
SELECT user_id, id, 1 + id %% 5, '', created_at, created_at FROM feedback_interaction
WHERE id %% 10 < 3 AND user_id IN {mine}""",
        "edits": f"""
INSERT INTO feedback_edit (user_id, interaction_id, original, edited, distance, diff, created_at)
SELECT user_id, id, output, 'Big news! ' || output, id %% 7, {DIFF},
    created_at + interval '30 seconds'
FROM feedback_interaction WHERE id %% 10 = 3 AND user_id IN {mine}""",
        "comparisons": f"""
INSERT INTO feedback_comparison (user_id, prompt, source, response_a, response_b, choice,
    embedding_model, created_at, updated_at, interaction_a_id)
SELECT user_id, prompt, source, output, 'Hi all! ' || output, 'b', '', created_at, created_at, id
FROM feedback_interaction WHERE id %% 20 = 5 AND user_id IN {mine}""",
        "memory": f"""
INSERT INTO memory_memoryentry (user_id, context_text, source, preference, origin,
    embedding_model, created_at, updated_at, edit_id)
SELECT e.user_id, 'Summarize news item', 'news', 'playful, short sentences', 'inferred', '',
    e.created_at, e.created_at, e.id
FROM feedback_edit e WHERE e.distance > 0 AND e.user_id IN {mine}""",
        "adapters": f"""
INSERT INTO adapters_adapterversion (user_id, version, status, method, base_model,
    base_fingerprint, rank, target_modules, storage_path, data_counts, training, evaluation,
    created_at)
SELECT c.user_id, v, CASE WHEN v = 2 THEN 'active' ELSE 'retired' END, 'dpo', 'm', 'f', 8,
    '{{}}', 'users/' || c.user_id || '/v' || v, '{{}}', '{{}}',
    '{{"metric": "preference_accuracy", "candidate": 0.8, "base": 0.5}}', now()
FROM console_usercounters c CROSS JOIN generate_series(1, 2) v
WHERE c.n_edits >= 20 AND c.user_id IN {mine}""",
        "fit jobs": f"""
INSERT INTO adapters_fitjob (user_id, kind, trigger, status, dimension, progress, attempts,
    celery_task_id, edit_cutoff, comparison_cutoff, rating_cutoff, error, created_at, worker,
    finished_at)
SELECT a.user_id, 'user_adapter', 'threshold', 'succeeded', '', 1.0, 1, '', 0, 0, 0, '', now(),
    '', now()
FROM adapters_adapterversion a WHERE a.user_id IN {mine}""",
        "copl": """
INSERT INTO collab_collabmodelversion (version, status, trigger, progress, stage, attempts,
    celery_task_id, error, edit_cutoff, comparison_cutoff, rating_cutoff, n_users, n_responses,
    n_pairs, n_heldout, n_pos_edges, n_neg_edges, dimensions, storage_path, embeddings_hash,
    config, metrics, expert_eta, created_at, worker)
SELECT coalesce(max(version), 0) + 1, 'active', 'manual', 1.0, '', 1, '', '', 0, 0, 0,
    %(users)s, 0, 0, 0, 0, 0, 64, '', '', '{}', '{}', '{}', now(), ''
FROM collab_collabmodelversion""",
        "embeddings": f"""
INSERT INTO collab_userembedding (user_id, version_id, vector, expert, n_pairs, created_at)
SELECT m.id, (SELECT max(id) FROM collab_collabmodelversion),
    (SELECT array_agg(random()::real - 0.5) FROM generate_series(1, 64) WHERE m.id > 0)::vector,
    m.id %% 8, 10, now()
FROM {mine} AS m""",
        "audit": f"""
INSERT INTO audit_auditentry (actor_username, action, target_username, target_user_id,
    object_type, object_id, summary, details, created_at)
SELECT 'admin', 'fit.start', 'u', m.id, 'fit job', '1', 'started a fit', '{{}}', now()
FROM {mine} AS m LIMIT 2000""",
    }
    spent = {}
    for name, sql in steps.items():
        started = time.perf_counter()
        cursor.execute(sql, {"users": users, "scale": scale})
        spent[name] = time.perf_counter() - started
        print(f"{name:>13}: {cursor.rowcount:>9,} rows in {spent[name]:6.1f} s", flush=True)
    cursor.execute("ANALYZE")
    return spent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def bench(requests: int, prefix: str = "scale") -> None:
    from django.db import connection
    from django.test import Client

    from apps.accounts.models import User

    staff, _ = User.objects.get_or_create(
        username="console-bench-staff", defaults={"is_staff": True}
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(staff)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.user_id FROM console_usercounters c JOIN accounts_user u ON u.id = c.user_id"
            " WHERE u.username LIKE %s ORDER BY c.n_interactions DESC, c.user_id", [f"{prefix}-%"]
        )  # fmt: skip
        ranked = [row[0] for row in cursor.fetchall()]
    heavy, typical = ranked[0], ranked[len(ranked) // 2]
    pages = {
        "users": "/console/",
        "users, page 150": "/console/?page=150",
        "user search": f"/console/?q={prefix}-77",
        "user (heaviest)": f"/console/users/{heavy}",
        "user (typical)": f"/console/users/{typical}",
        "plots": "/console/plots",
        "jobs": "/console/jobs",
        "jobs.json": "/console/jobs.json",
        "audit": "/console/audit",
        "audit of a user": f"/console/audit?user={heavy}",
    }
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(
        f"{'page':<18}{'p50 ms':>9}{'p99 ms':>9}{'cpu p50':>9}{'KB':>7}"
        f"   (n={requests}, warm, sequential; cpu: the web side's Python)"
    )
    for name, url in pages.items():
        times, cpu = [], []
        for i in range(requests + 2):
            started, used = time.perf_counter(), time.process_time()
            response = client.get(url)
            if i >= 2:  # the first two warm the caches
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - used) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        print(
            f"{name:<18}{statistics.median(times):9.1f}{percentile(times, 99):9.1f}"
            f"{statistics.median(cpu):9.1f}{len(response.content) / 1024:7.0f}",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["fill", "bench"])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")
    import django

    django.setup()
    if args.action == "fill":
        from django.db import connection, transaction

        with transaction.atomic(), connection.cursor() as cursor:
            fill(cursor, args.users, args.interactions)
    else:
        bench(args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
