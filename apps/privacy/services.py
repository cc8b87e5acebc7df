"""Writes for a user's data as a whole: erase everything they own (hard delete), in SQL.

No row is loaded into Python: each owned table is emptied by ``DELETE … WHERE id = ANY(batch)``
over batches of the user's ids, every foreign key that points at those rows handled first as its
``on_delete`` says (cascade: the referring rows go too, whoever owns them; SET_NULL: an
``UPDATE … SET col = NULL``), derived from the models (:mod:`apps.privacy.relations`). Each batch
is its own short transaction, so locks are held for milliseconds and only on this user's rows
(and rows referring to them); other users' writes go on. Database triggers fire as for any
delete (the memory stamps, the console's counters).

A batch leaves the database consistent (a row goes with everything that must go with it), so an
erasure that stopped half-way leaves fewer rows, never a dangling key, and running it again
finishes the job.
"""

from __future__ import annotations

from collections import Counter

from django.db import connection, models, transaction
from django.db.backends.utils import CursorWrapper

from apps.accounts.models import User
from apps.privacy.relations import check_erasable, erase_order, relations_to

ERASE_BATCH = 2000
"""Rows of one table per transaction. A batch of 2,000 interactions took about 0.5 s on the busy
2-core test machine, most of it PostgreSQL's per-row foreign-key checks at commit; its locks are
on this user's rows only."""
MAX_PASSES = 3
"""Passes over every owned table: a pass that deletes nothing ends the erasure; a second pass
takes rows written while the first ran (e.g. a memory entry learned meanwhile) and rows a batch
skipped (deleted by someone else while it waited for their lock)."""


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)


def _delete_rows(
    cursor: CursorWrapper, model: type[models.Model], ids: list[int], deleted: Counter[str]
) -> None:
    """Delete ``model``'s rows ``ids`` after what refers to them, as each ``on_delete`` says.

    Rows that refer to them and have referrers of their own are locked (``FOR UPDATE``) before
    those are handled, so nothing can start pointing at them before they go.
    """
    for relation in relations_to(model):
        table, column = _quoted(relation.table), _quoted(relation.column)
        if relation.action == "set_null":
            cursor.execute(f"UPDATE {table} SET {column} = NULL WHERE {column} = ANY(%s)", [ids])
        elif relation.action == "cascade" and relations_to(relation.model):
            pk = _quoted(relation.pk_column)
            cursor.execute(f"SELECT {pk} FROM {table} WHERE {column} = ANY(%s) FOR UPDATE", [ids])
            referring = [row[0] for row in cursor.fetchall()]
            if referring:
                _delete_rows(cursor, relation.model, referring, deleted)
        elif relation.action == "cascade":
            cursor.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", [ids])
            deleted[relation.model._meta.label] += cursor.rowcount
    table, pk = _quoted(model._meta.db_table), _quoted(model._meta.pk.column)
    cursor.execute(f"DELETE FROM {table} WHERE {pk} = ANY(%s)", [ids])
    deleted[model._meta.label] += cursor.rowcount


def _erase_batch(model: type[models.Model], user_id: int, deleted: Counter[str]) -> bool:
    """Delete up to :data:`ERASE_BATCH` of the user's rows of ``model`` in one transaction;
    answer whether there may be more (a full batch)."""
    table, pk = _quoted(model._meta.db_table), _quoted(model._meta.pk.column)
    user_column = _quoted(model._meta.get_field("user").column)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {pk} FROM {table} WHERE {user_column} = %s LIMIT %s FOR UPDATE",
            [user_id, ERASE_BATCH],
        )
        ids = [row[0] for row in cursor.fetchall()]
        if ids:
            _delete_rows(cursor, model, ids, deleted)
    return len(ids) == ERASE_BATCH


def erase_user_data(user: User) -> dict[str, int]:
    """Hard-delete every row the user owns, in every app; return how many rows of each model.

    Cascades are followed (an interaction takes its ratings and edits, an edit its pending
    inference, whoever owns them) and SET_NULL keys are cleared (another user's comparison of one
    of these interactions stays, without it); embeddings are columns of the rows. The account
    itself and its API keys stay, so the user can go on using Attune. Counts are the statements'
    row counts, cascades included, under each model's label.
    """
    check_erasable()
    deleted: Counter[str] = Counter()
    for _ in range(MAX_PASSES):
        before = sum(deleted.values())
        for model in erase_order():
            while _erase_batch(model, user.pk, deleted):
                pass
        if sum(deleted.values()) == before:
            break
    return {label: count for label, count in sorted(deleted.items()) if count}
