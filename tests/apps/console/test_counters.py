"""The console's counters and rounds, kept by database triggers: right after ORM writes, bulk
creates, COPY, plain SQL deletes and cascades, and equal to a recount from the rows."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.adapters.models import AdapterVersion
from apps.console import selectors
from apps.console.models import EditRound, UserCounters
from apps.feedback.models import Edit, Interaction, Rating
from apps.memory.models import MemoryEntry
from tests.support.factories import (
    ComparisonFactory,
    EditFactory,
    InteractionFactory,
    RatingFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
TABLES = {
    "n_interactions": "feedback_interaction",
    "n_ratings": "feedback_rating",
    "n_edits": "feedback_edit",
    "n_comparisons": "feedback_comparison",
    "n_memory": "memory_memoryentry",
    "n_adapters": "adapters_adapterversion",
}


def counters(user) -> dict[str, int]:
    row = UserCounters.objects.filter(user_id=user.pk).values(*TABLES, "n_rounds").first()
    return row or {}


def recount(user) -> dict[str, int]:
    """What the counters must say, counted from the rows themselves."""
    found = {}
    with connection.cursor() as cursor:
        for name, table in TABLES.items():
            cursor.execute(f"SELECT count(*) FROM {table} WHERE user_id = %s", [user.pk])
            found[name] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(DISTINCT interaction_id) FROM feedback_edit WHERE user_id = %s", [user.pk]
        )
        found["n_rounds"] = cursor.fetchone()[0]
    return found


def edit(interaction, distance: int, **kwargs) -> Edit:
    return EditFactory(interaction=interaction, distance=distance, **kwargs)


def test_a_new_user_has_zero_counters_and_orm_writes_count():
    person = UserFactory()
    assert counters(person) == dict.fromkeys([*TABLES, "n_rounds"], 0)
    first, second = InteractionFactory(user=person), InteractionFactory(user=person)
    RatingFactory(interaction=first)
    edit(first, 3), edit(first, 1), edit(second, 0)
    ComparisonFactory(user=person)
    MemoryEntry.objects.create(user=person, context_text="news", preference="short", origin="user")
    AdapterVersion.objects.create(
        user=person, version=1, method="dpo", base_model="m", base_fingerprint="f", rank=8,
        storage_path="x",
    )  # fmt: skip
    assert counters(person) == recount(person) == {
        "n_interactions": 2, "n_ratings": 1, "n_edits": 3, "n_comparisons": 1, "n_memory": 1,
        "n_adapters": 1, "n_rounds": 2,
    }  # fmt: skip
    other = UserFactory()
    assert counters(other)["n_interactions"] == 0  # nobody else's counts moved


def test_bulk_create_copy_and_plain_sql_deletes_keep_them_right():
    people = [UserFactory() for _ in range(3)]
    Interaction.objects.bulk_create(
        Interaction(user=p, prompt="p", output="o") for p in people for _ in range(4)
    )
    now = timezone.now()
    with connection.cursor() as cursor:  # a COPY fill, as the scale bench does
        columns = (
            "user_id, prompt, messages, source, output, model_id, adapter_version, "
            "preference_coefficients, memory_entry_ids, conditioning_preference, "
            "embedding_model, created_at"
        )
        with cursor.cursor.copy(f"COPY feedback_interaction ({columns}) FROM STDIN") as copy:
            for person in people[:2]:
                for _ in range(5):
                    copy.write_row([person.pk, "p", "[]", "", "o", "", "", "{}", "{}", "", "", now])
        cursor.execute(
            "INSERT INTO feedback_edit (user_id, interaction_id, original, edited, distance, "
            "diff, created_at) SELECT user_id, id, 'a', 'b', 2, '[]', now() "
            "FROM feedback_interaction WHERE user_id = ANY(%s)", [[p.pk for p in people]]
        )  # fmt: skip
    assert [counters(p)["n_interactions"] for p in people] == [9, 9, 4]
    for person in people:
        assert counters(person) == recount(person)
        assert counters(person)["n_rounds"] == counters(person)["n_interactions"]
    with connection.cursor() as cursor:  # a hard delete in plain SQL, children first
        for table in ("feedback_edit", "feedback_interaction"):
            cursor.execute(f"DELETE FROM {table} WHERE user_id = %s", [people[0].pk])
    assert counters(people[0]) == recount(people[0]) == dict.fromkeys([*TABLES, "n_rounds"], 0)
    assert not EditRound.objects.filter(user_id=people[0].pk).exists()
    assert counters(people[1]) == recount(people[1]) and counters(people[1])["n_edits"] == 9


def test_cascades_and_a_deleted_user():
    person, other = UserFactory(), UserFactory()
    interaction = InteractionFactory(user=person)
    RatingFactory(interaction=interaction), edit(interaction, 2)
    edit(InteractionFactory(user=person), 1)
    edit(InteractionFactory(user=other), 1)
    interaction.delete()  # the ORM cascades to its rating and edit
    assert counters(person) == recount(person)
    assert (counters(person)["n_ratings"], counters(person)["n_rounds"]) == (0, 1)
    person.delete()
    assert not UserCounters.objects.filter(user_id=person.pk).exists()
    assert not EditRound.objects.filter(user_id=person.pk).exists()
    assert counters(other) == recount(other)


def test_a_round_costs_its_latest_edit_in_the_order_interactions_were_made():
    person = UserFactory()
    old, new = InteractionFactory(user=person), InteractionFactory(user=person)
    Interaction.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1))
    edit(new, 5)  # edited first, but made second: round 2
    first_edit_of_old = edit(old, 4)
    latest = edit(old, 1)
    assert [(r.round, r.cost) for r in selectors.cost_per_round([person.pk])[person.pk]] == [
        (1, 1.0), (2, 5.0),
    ]  # fmt: skip
    Edit.objects.filter(pk=latest.pk).delete()  # the earlier edit's cost is the round's again
    assert EditRound.objects.get(interaction_id=old.pk).cost == first_edit_of_old.distance == 4
    assert counters(person)["n_rounds"] == 2
    with connection.cursor() as cursor:  # a backdated edit does not replace a newer one
        cursor.execute(
            "INSERT INTO feedback_edit (user_id, interaction_id, original, edited, distance, diff,"
            " created_at) VALUES (%s, %s, 'a', 'b', 9, '[]', now() - interval '1 hour')",
            [person.pk, new.pk],
        )
    assert EditRound.objects.get(interaction_id=new.pk).cost == 5


def test_the_migration_fills_them_from_existing_rows():
    people = [UserFactory() for _ in range(3)]
    for n, person in enumerate(people):
        for cost in range(n + 1):
            edit(InteractionFactory(user=person), cost)
        RatingFactory(interaction=InteractionFactory(user=person))
    before = {p.pk: counters(p) for p in people}
    rounds = sorted(EditRound.objects.values_list("interaction_id", "user_id", "made_at", "cost"))
    migration = importlib.import_module("apps.console.migrations.0001_counters")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE console_usercounters, console_editround")
        cursor.execute(migration.FILL)
    assert {p.pk: counters(p) for p in people} == before
    assert {p.pk: recount(p) for p in people} == before
    assert sorted(EditRound.objects.values_list("interaction_id", "user_id", "made_at", "cost")) \
        == rounds  # fmt: skip


def test_ratings_of_many_users_in_one_statement():
    people = [UserFactory() for _ in range(5)]
    interactions = [InteractionFactory(user=p) for p in people for _ in range(2)]
    Rating.objects.bulk_create(Rating(user=i.user, interaction=i, stars=3) for i in interactions)
    assert [counters(p)["n_ratings"] for p in people] == [2] * 5
    Rating.objects.filter(user__in=people[:3]).delete()
    assert [counters(p)["n_ratings"] for p in people] == [0, 0, 0, 2, 2]
