# Per-user counters and edited-interaction rounds for the console, kept by statement-level
# triggers with transition tables (one aggregate per statement: ORM rows, bulk_create, COPY fills
# and plain SQL DELETEs all count), then filled from the rows already there.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# (table, counter) pairs; the user's id column is user_id in each. Edits are counted by
# console_track_rounds, with the rounds (one trigger, one counters update per statement).
COUNTED = [
    ("feedback_interaction", "n_interactions"),
    ("feedback_rating", "n_ratings"),
    ("feedback_comparison", "n_comparisons"),
    ("memory_memoryentry", "n_memory"),
    ("adapters_adapterversion", "n_adapters"),
]

# One function per counter (static SQL, so PL/pgSQL keeps its plans); rows are locked in user_id
# order (no deadlock between two bulk statements); a delete never re-creates the counters row of
# a user being deleted.
COUNT = """
CREATE FUNCTION console_count_{column}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO console_usercounters AS c (user_id, {column})
        SELECT user_id, count(*) FROM counted_new GROUP BY user_id ORDER BY user_id
        ON CONFLICT (user_id) DO UPDATE SET {column} = c.{column} + EXCLUDED.{column};
    ELSE
        UPDATE console_usercounters AS c SET {column} = c.{column} - gone.n
        FROM (SELECT user_id, count(*) AS n FROM counted_old GROUP BY user_id) AS gone
        WHERE c.user_id = gone.user_id;
    END IF;
    RETURN NULL;
END $$;
"""

FUNCTIONS = "".join(COUNT.format(column=column) for _, column in COUNTED) + """
CREATE FUNCTION console_track_rounds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The latest edit (created_at, id) of each interaction a statement touched gives its cost;
    -- n_edits counts the edits, n_rounds the interactions with at least one.
    IF TG_OP = 'INSERT' THEN
        WITH touched AS (SELECT DISTINCT interaction_id FROM edits_new),
        latest AS (
            SELECT DISTINCT ON (e.interaction_id) e.interaction_id, e.user_id, e.distance,
                   i.created_at
            FROM touched t
            JOIN feedback_edit e ON e.interaction_id = t.interaction_id
            JOIN feedback_interaction i ON i.id = t.interaction_id
            ORDER BY e.interaction_id, e.created_at DESC, e.id DESC
        ), saved AS (
            INSERT INTO console_editround AS r (interaction_id, user_id, made_at, cost)
            SELECT interaction_id, user_id, created_at, distance FROM latest
            ON CONFLICT (interaction_id) DO UPDATE SET cost = EXCLUDED.cost
            RETURNING r.user_id, (r.xmax = 0) AS inserted
        )
        INSERT INTO console_usercounters AS c (user_id, n_edits, n_rounds)
        SELECT user_id, sum(edits), sum(rounds) FROM (
            SELECT user_id, count(*) AS edits, 0 AS rounds FROM edits_new GROUP BY user_id
            UNION ALL
            SELECT user_id, 0, count(*) FROM saved WHERE inserted GROUP BY user_id
        ) AS added GROUP BY user_id ORDER BY user_id
        ON CONFLICT (user_id) DO UPDATE SET n_edits = c.n_edits + EXCLUDED.n_edits,
                                            n_rounds = c.n_rounds + EXCLUDED.n_rounds;
    ELSE
        WITH touched AS (SELECT DISTINCT interaction_id FROM edits_old),
        latest AS (
            SELECT DISTINCT ON (e.interaction_id) e.interaction_id, e.distance
            FROM touched t JOIN feedback_edit e ON e.interaction_id = t.interaction_id
            ORDER BY e.interaction_id, e.created_at DESC, e.id DESC
        ), kept AS (
            UPDATE console_editround AS r SET cost = latest.distance
            FROM latest WHERE r.interaction_id = latest.interaction_id AND r.cost <> latest.distance
        ), gone AS (
            DELETE FROM console_editround AS r USING touched t
            WHERE r.interaction_id = t.interaction_id
              AND NOT EXISTS (SELECT 1 FROM latest WHERE latest.interaction_id = t.interaction_id)
            RETURNING r.user_id
        )
        UPDATE console_usercounters AS c
        SET n_edits = c.n_edits - g.edits, n_rounds = c.n_rounds - g.rounds
        FROM (
            SELECT user_id, sum(edits) AS edits, sum(rounds) AS rounds FROM (
                SELECT user_id, count(*) AS edits, 0 AS rounds FROM edits_old GROUP BY user_id
                UNION ALL
                SELECT user_id, 0, count(*) FROM gone GROUP BY user_id
            ) AS removed GROUP BY user_id
        ) AS g
        WHERE c.user_id = g.user_id;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION console_track_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO console_usercounters (user_id) SELECT id FROM users_new ORDER BY id
        ON CONFLICT (user_id) DO NOTHING;
    ELSE
        DELETE FROM console_usercounters AS c USING users_old o WHERE c.user_id = o.id;
        DELETE FROM console_editround AS r USING users_old o WHERE r.user_id = o.id;
    END IF;
    RETURN NULL;
END $$;
"""

TRIGGERS = "".join(
    f"""
CREATE TRIGGER console_count_ins AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS counted_new
    FOR EACH STATEMENT EXECUTE FUNCTION console_count_{column}();
CREATE TRIGGER console_count_del AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS counted_old
    FOR EACH STATEMENT EXECUTE FUNCTION console_count_{column}();
"""
    for table, column in COUNTED
) + """
CREATE TRIGGER console_rounds_ins AFTER INSERT ON feedback_edit
    REFERENCING NEW TABLE AS edits_new FOR EACH STATEMENT EXECUTE FUNCTION console_track_rounds();
CREATE TRIGGER console_rounds_del AFTER DELETE ON feedback_edit
    REFERENCING OLD TABLE AS edits_old FOR EACH STATEMENT EXECUTE FUNCTION console_track_rounds();
CREATE TRIGGER console_users_ins AFTER INSERT ON accounts_user
    REFERENCING NEW TABLE AS users_new FOR EACH STATEMENT EXECUTE FUNCTION console_track_users();
CREATE TRIGGER console_users_del AFTER DELETE ON accounts_user
    REFERENCING OLD TABLE AS users_old FOR EACH STATEMENT EXECUTE FUNCTION console_track_users();
"""

# After the triggers (same transaction; their locks hold writers off until it commits).
FILL = "INSERT INTO console_usercounters (user_id) SELECT id FROM accounts_user;\n" + "".join(
    f"""
UPDATE console_usercounters AS c SET {column} = s.n
FROM (SELECT user_id, count(*) AS n FROM {table} GROUP BY user_id) AS s
WHERE c.user_id = s.user_id;"""
    for table, column in COUNTED
) + """
INSERT INTO console_editround (interaction_id, user_id, made_at, cost)
SELECT DISTINCT ON (e.interaction_id) e.interaction_id, e.user_id, i.created_at, e.distance
FROM feedback_edit e JOIN feedback_interaction i ON i.id = e.interaction_id
ORDER BY e.interaction_id, e.created_at DESC, e.id DESC;
UPDATE console_usercounters AS c SET n_rounds = s.n
FROM (SELECT user_id, count(*) AS n FROM console_editround GROUP BY user_id) AS s
WHERE c.user_id = s.user_id;
UPDATE console_usercounters AS c SET n_edits = s.n
FROM (SELECT user_id, count(*) AS n FROM feedback_edit GROUP BY user_id) AS s
WHERE c.user_id = s.user_id;
"""

DROP = "".join(
    f"DROP TRIGGER console_count_ins ON {table};\nDROP TRIGGER console_count_del ON {table};\n"
    f"DROP FUNCTION console_count_{column}();\n"
    for table, column in COUNTED
) + """
DROP TRIGGER console_rounds_ins ON feedback_edit;
DROP TRIGGER console_rounds_del ON feedback_edit;
DROP TRIGGER console_users_ins ON accounts_user;
DROP TRIGGER console_users_del ON accounts_user;
DROP FUNCTION console_track_rounds();
DROP FUNCTION console_track_users();
"""


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("adapters", "0004_job_leases"),
        ("feedback", "0001_initial"),
        ("memory", "0004_pending_inference"),
    ]

    operations = [
        migrations.CreateModel(
            name="EditRound",
            fields=[
                ("interaction_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("user_id", models.BigIntegerField()),
                ("made_at", models.DateTimeField()),
                ("cost", models.IntegerField()),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["user_id", "made_at", "interaction_id"],
                        include=("cost",),
                        name="console_round_order",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="UserCounters",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="counters",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("n_interactions", models.BigIntegerField(db_default=0, default=0)),
                ("n_ratings", models.BigIntegerField(db_default=0, default=0)),
                ("n_edits", models.BigIntegerField(db_default=0, default=0)),
                ("n_comparisons", models.BigIntegerField(db_default=0, default=0)),
                ("n_memory", models.BigIntegerField(db_default=0, default=0)),
                ("n_adapters", models.BigIntegerField(db_default=0, default=0)),
                (
                    "n_rounds",
                    models.BigIntegerField(
                        db_default=0,
                        default=0,
                        help_text="Edited interactions (rounds of the edit-cost plot).",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "user counters",
                "indexes": [
                    models.Index(fields=["-n_interactions", "user"], name="console_busiest"),
                    models.Index(
                        condition=models.Q(("n_rounds__gt", 0)),
                        fields=["-n_rounds", "user"],
                        name="console_editors",
                    ),
                ],
            },
        ),
        migrations.RunSQL(FUNCTIONS + TRIGGERS + FILL, DROP),
    ]
