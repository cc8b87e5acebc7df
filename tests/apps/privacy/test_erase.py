"""Erasing a user's data in SQL: every owned row and what cascades from it, each ``on_delete``
honoured, other users untouched, a constant number of statements, and a retry that finishes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import ForeignKey, ForeignObjectRel
from django.test.utils import CaptureQueriesContext

from apps.adapters.models import FitJob, PreferenceVector
from apps.feedback.models import Comparison, Interaction, Rating
from apps.memory.models import MemoryEntry, MemoryStamp, PendingInference
from apps.privacy import services
from apps.privacy.relations import check_erasable, erase_order, owned_models, relations_to
from tests.apps.privacy.support import cross, fill_everything, rows_of, table_sizes
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_every_owned_model_and_every_key_pointing_at_one_is_handled():
    reached = check_erasable()  # raises for an on_delete, a key or a signal it cannot honour
    owned = owned_models()
    assert set(owned) <= set(reached) and PendingInference in reached
    assert sorted(erase_order(), key=str) == sorted(owned, key=str)
    for model in reached:  # every foreign key stored anywhere that points at one of them
        expected = {  # Django's own view of them, hidden ones (related_name="+") included
            (related.related_model, related.field.column)
            for related in model._meta.get_fields(include_hidden=True)
            if isinstance(related, ForeignObjectRel) and isinstance(related.field, ForeignKey)
        }
        assert {(r.model, r.column) for r in relations_to(model)} == expected, model
    assert ("feedback.Comparison", "interaction_a_id", "set_null") in {
        (r.model._meta.label, r.column, r.action) for r in relations_to(Interaction)
    }


def test_children_are_erased_before_their_parents():
    order = [m._meta.label for m in erase_order()]
    assert order.index("feedback.Rating") < order.index("feedback.Interaction")
    assert order.index("memory.MemoryEntry") < order.index("feedback.Edit")
    assert order.index("feedback.Edit") < order.index("feedback.Interaction")
    assert order.index("adapters.AdapterVersion") < order.index("adapters.FitJob")


@pytest.fixture
def filled():
    """A user with 40 interactions and rows of every kind; another user with their own history
    and rows that point at the first one's (a rating, a comparison, a memory entry, a vector)."""
    owner, other = UserFactory(), UserFactory()
    fill_everything(owner, 40)
    fill_everything(other, 10)
    return owner, other, cross(owner, other)


def test_erase_deletes_every_row_and_honours_each_on_delete(filled):
    owner, other, crossing = filled
    owned, theirs, sizes = rows_of(owner), rows_of(other), table_sizes()
    stamp = MemoryStamp.objects.get(user_id=owner.pk).version

    deleted = services.erase_user_data(owner)

    # everything the owner had, plus what cascaded: the pending inferences of their edits, and
    # the other user's rating of their interaction (CASCADE: it goes, whoever owns it)
    assert deleted == {
        **owned, "feedback.Rating": owned["feedback.Rating"] + 1, "memory.PendingInference": 3
    }  # fmt: skip
    assert rows_of(owner) == {}
    after = table_sizes()
    assert sum(sizes.values()) - sum(after.values()) == sum(deleted.values())
    assert not Rating.objects.filter(pk=crossing.rating.pk).exists()
    # SET_NULL: the other user's rows stay, without the key
    comparison = Comparison.objects.get(pk=crossing.comparison.pk)
    assert comparison.interaction_a_id is None and comparison.interaction_b_id is None
    assert MemoryEntry.objects.get(pk=crossing.memory.pk).edit_id is None
    assert PreferenceVector.objects.get(pk=crossing.vector.pk).fit_job_id is None
    assert rows_of(other) == {**theirs, "feedback.Rating": theirs["feedback.Rating"] - 1}
    # the triggers fired (the memory copy learns of the deletion)
    assert MemoryStamp.objects.get(user_id=owner.pk).version > stamp
    assert services.erase_user_data(owner) == {}


def test_rows_are_deleted_in_sql_with_a_constant_number_of_statements(
    filled, django_assert_max_num_queries
):
    owner, other, _ = filled
    with CaptureQueriesContext(connection) as small:
        services.erase_user_data(other)  # 10 interactions
    for query in small.captured_queries:  # only ids are read; rows are never loaded
        sql = query["sql"]
        assert sql.startswith(("DELETE ", "UPDATE ", "SAVEPOINT ", "RELEASE ")) or (
            sql.startswith('SELECT "id" FROM ') and "FOR UPDATE" in sql
        ), sql
    with django_assert_max_num_queries(len(small.captured_queries)):
        services.erase_user_data(owner)  # 40 interactions and a crossing: the same statements
    assert rows_of(owner) == {}


def test_small_batches_give_the_same_result(filled, monkeypatch):
    owner, _other, crossing = filled
    owned = rows_of(owner)
    monkeypatch.setattr(services, "ERASE_BATCH", 3)
    deleted = services.erase_user_data(owner)
    assert deleted["feedback.Interaction"] == owned["feedback.Interaction"] == 40
    assert deleted["feedback.Rating"] == owned["feedback.Rating"] + 1
    assert rows_of(owner) == {}
    assert Comparison.objects.get(pk=crossing.comparison.pk).interaction_a_id is None


def test_an_erasure_stopped_half_way_leaves_no_dangling_key_and_a_retry_finishes(
    filled, monkeypatch, client_for
):
    owner = filled[0]
    owned = rows_of(owner)
    monkeypatch.setattr(services, "ERASE_BATCH", 5)
    real, calls = services._delete_rows, []

    def failing(cursor, model, ids, deleted):
        calls.append(model)
        if model is Interaction and calls.count(Interaction) == 3:
            raise RuntimeError("the worker died")
        real(cursor, model, ids, deleted)

    monkeypatch.setattr(services, "_delete_rows", failing)
    with pytest.raises(RuntimeError):
        services.erase_user_data(owner)

    left = rows_of(owner)  # ratings, edits, memory gone; 10 interactions gone, 30 left
    assert left["feedback.Interaction"] == 30 and "feedback.Rating" not in left
    assert all(left[label] == owned[label] for label in left if label != "feedback.Interaction")
    with connection.cursor() as cursor:  # every foreign key still holds (checked at each commit)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert client_for(owner).get("/api/interactions").json()["count"] == 30

    monkeypatch.setattr(services, "_delete_rows", real)
    services.erase_user_data(owner)
    assert rows_of(owner) == {}
    assert FitJob.objects.filter(user=owner).count() == 0
