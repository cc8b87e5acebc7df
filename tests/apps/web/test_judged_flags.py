"""The "rated"/"edited" flags of a person's texts cost one index probe per text shown, however
many ratings and edits the whole site has (issue 15: a hashed EXISTS read all 95,000 edits on
every history page and on every "next")."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.feedback.models import Edit, Interaction, Rating
from apps.web import selectors
from tests.support.factories import (
    EditFactory,
    InteractionFactory,
    RatingFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
SHOWN = 21  # a history page reads 20 rows and one more


def _world(person, mine: int = 300, theirs: int = 600) -> list[Interaction]:
    """``person`` with ``mine`` texts (every third rated, every fifth edited) beside another
    user with ``theirs`` texts, all rated and edited; statistics gathered as autovacuum would."""
    other = UserFactory()
    other.save()
    made = Interaction.objects.bulk_create(
        [InteractionFactory.build(user=other) for _ in range(theirs)]
    )
    Rating.objects.bulk_create([RatingFactory.build(interaction=i) for i in made])
    Edit.objects.bulk_create([EditFactory.build(interaction=i) for i in made])
    own = Interaction.objects.bulk_create(
        [InteractionFactory.build(user=person) for _ in range(mine)]
    )
    Rating.objects.bulk_create([RatingFactory.build(interaction=i) for i in own[::3]])
    Edit.objects.bulk_create([EditFactory.build(interaction=i) for i in own[::5]])
    with connection.cursor() as cursor:
        for model in (Interaction, Rating, Edit):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return own


def _rows_read(query, table: str) -> int:
    """How many rows the executed plan of ``query`` (a queryset, or SQL as run) read from
    ``table``."""
    sql, params = (query, ()) if isinstance(query, str) else query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def walk(node: dict) -> int:
        here = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
        own = here if node.get("Relation Name") == table else 0
        return own + sum(walk(child) for child in node.get("Plans", []))

    return int(walk(plan[0]["Plan"]))


def test_a_page_of_texts_probes_only_its_own_rows(user):
    own = _world(user)
    page = selectors.interactions(user).order_by("-created_at", "-id")[:SHOWN]
    for model in (Rating, Edit):
        assert _rows_read(page, model._meta.db_table) <= SHOWN, model.__name__
    shown = {i.pk: i for i in page}
    rated = set(Rating.objects.filter(interaction__in=own).values_list("interaction", flat=True))
    edited = set(Edit.objects.filter(interaction__in=own).values_list("interaction", flat=True))
    assert any(i.rated for i in shown.values()) and any(i.edited for i in shown.values())
    assert {pk for pk, i in shown.items() if i.rated} == rated & shown.keys()
    assert {pk for pk, i in shown.items() if i.edited} == edited & shown.keys()


def test_next_unjudged_stops_at_the_first_unjudged_text(user):
    own = _world(user)
    found = selectors.next_unjudged(user)
    unjudged = [
        i
        for i in sorted(own, key=lambda i: (i.created_at, i.pk), reverse=True)
        if not Rating.objects.filter(interaction=i).exists()
        and not Edit.objects.filter(interaction=i).exists()
    ]
    assert found is not None and found.pk == unjudged[0].pk
    with CaptureQueriesContext(connection) as seen:
        after = selectors.next_unjudged(user, found)
    assert after is not None and after.pk == unjudged[1].pk
    for model in (Rating, Edit):
        assert _rows_read(seen[-1]["sql"], model._meta.db_table) <= SHOWN, model.__name__
