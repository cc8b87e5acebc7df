"""The database is PostgreSQL with pgvector, and vectors round-trip through the ORM."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from pgvector.django import CosineDistance

from tests.support.testapp.models import Note

pytestmark = pytest.mark.django_db


def test_database_is_postgres_with_pgvector():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        (version,) = cursor.fetchone()
    assert connection.vendor == "postgresql"
    assert tuple(int(x) for x in version.split(".")[:2]) >= (0, 8)


def test_vector_round_trip_and_cosine_nearest_neighbour(user):
    Note.objects.create(user=user, text="x axis", embedding=[1.0, 0.0, 0.0])
    Note.objects.create(user=user, text="y axis", embedding=[0.0, 1.0, 0.0])
    Note.objects.create(user=user, text="mostly z", embedding=[0.1, 0.0, 2.0])

    stored = Note.objects.get(text="mostly z")
    np.testing.assert_allclose(stored.embedding, [0.1, 0.0, 2.0], rtol=1e-6)

    nearest = (
        Note.objects.annotate(distance=CosineDistance("embedding", [0.0, 0.2, 5.0]))
        .order_by("distance")
        .values_list("text", "distance")
    )
    texts = [t for t, _ in nearest]
    assert texts == ["mostly z", "y axis", "x axis"]
    # cosine distance is scale-free: [2, 0, 0] is at distance 0 from "x axis"
    closest_to_x = Note.objects.order_by(CosineDistance("embedding", [2.0, 0.0, 0.0])).first()
    assert closest_to_x.text == "x axis"
