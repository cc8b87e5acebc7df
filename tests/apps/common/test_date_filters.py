"""``created_after`` / ``created_before`` on every list and export: any UTC offset Python reads
is a correct bound (PostgreSQL alone takes only ±15:59), anything else a 400 naming the parameter.
"""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from django.utils import timezone as django_timezone
from drf_spectacular.generators import SchemaGenerator

from tests.support.factories import InteractionFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/interactions",
    "/api/ratings",
    "/api/edits",
    "/api/comparisons",
    "/api/personas",
    "/api/memory",
    "/api/export/dpo",
    "/api/export/kto",
]
GOOD = ["2020-01-01T00:00:00+16:00", "2020-01-01T00:00:00-23:59", "2020-01-01T00:00:00-16:00"]
BAD = [
    "garbage",
    "2020-13-45T00:00:00Z",
    "2020-01-01T00:00:00+24:00",
    "0001-01-01T00:00:00+16:00",  # before year 1 in UTC
    "9999-12-31T23:59:59-16:00",  # after year 9999 in UTC
]


def test_the_list_names_every_endpoint_with_a_date_filter():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    with_dates = {
        path
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        if any(p["name"] == "created_after" for p in operation.get("parameters", []))
    }
    assert with_dates == set(ENDPOINTS)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("parameter", ["created_after", "created_before"])
def test_any_offset_is_answered_never_a_500(client_for, user, path, parameter):
    client = client_for(user)
    for value in GOOD:
        answer = client.get(path, {parameter: value})
        assert answer.status_code == 200, (value, answer.content)
    for value in BAD:
        answer = client.get(path, {parameter: value})
        assert answer.status_code == 400, (value, answer.content)
        assert parameter in answer.json(), answer.json()


def test_an_offset_beyond_16_hours_is_the_right_instant(client_for, user):
    InteractionFactory(user=user)
    client = client_for(user)
    ahead = timezone(timedelta(hours=16, minutes=30))
    now = django_timezone.now().astimezone(ahead)

    def ids(**query: str) -> list[int]:
        answer = client.get("/api/interactions", query)
        assert answer.status_code == 200, answer.content
        return [row["id"] for row in answer.json()["results"]]

    hour = timedelta(hours=1)
    assert len(ids(created_after=(now - hour).isoformat())) == 1
    assert ids(created_after=(now + hour).isoformat()) == []
    assert ids(created_before=(now - hour).isoformat()) == []
    assert len(ids(created_before=(now + hour).isoformat())) == 1
