"""What the console reads instead of scanning: per-user counters and each edited interaction's
latest cost, both kept by PostgreSQL triggers (``migrations/0001_counters``).

Statement-level ``AFTER`` triggers with transition tables run one aggregate per statement, so a
row created by the ORM, a ``bulk_create``, a ``COPY`` fill and a plain SQL ``DELETE`` all leave
them right. Neither table has a foreign key (as ``apps.memory.MemoryStamp``): the triggers also
fire while a user's rows are being deleted; a trigger on the user table adds and removes the
counters row. A row's ``user_id`` is never changed (no service moves rows between users), so
updates are not counted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class UserCounters(models.Model):
    """How many rows of each kind a user has; one row per user (created with the user)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.DO_NOTHING,  # the user table's trigger deletes the row
        db_constraint=False,
        related_name="counters",
    )
    n_interactions = models.BigIntegerField(default=0, db_default=0)
    n_ratings = models.BigIntegerField(default=0, db_default=0)
    n_edits = models.BigIntegerField(default=0, db_default=0)
    n_comparisons = models.BigIntegerField(default=0, db_default=0)
    n_memory = models.BigIntegerField(default=0, db_default=0)
    n_adapters = models.BigIntegerField(default=0, db_default=0)
    n_rounds = models.BigIntegerField(
        default=0, db_default=0, help_text="Edited interactions (rounds of the edit-cost plot)."
    )

    class Meta:
        verbose_name_plural = "user counters"
        indexes = [
            # "busiest first" (the users list) and "most rounds first" (the plots page)
            models.Index(name="console_busiest", fields=["-n_interactions", "user"]),
            models.Index(
                name="console_editors",
                fields=["-n_rounds", "user"],
                condition=models.Q(n_rounds__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"Counters of {self.user_id}"


class EditRound(models.Model):
    """One edited interaction (a round of the CIPHER/PRELUDE protocol): when the interaction was
    made and the word-level cost of its latest edit. A user's rounds are their rows in
    ``(made_at, interaction_id)`` order."""

    interaction_id = models.BigIntegerField(primary_key=True)
    user_id = models.BigIntegerField()
    made_at = models.DateTimeField()
    cost = models.IntegerField()

    class Meta:
        indexes = [
            models.Index(
                name="console_round_order",
                fields=["user_id", "made_at", "interaction_id"],
                include=["cost"],
            )
        ]

    def __str__(self) -> str:
        return f"Round of interaction {self.interaction_id}: {self.cost}"
