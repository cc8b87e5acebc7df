"""The embedding map at size: one cached computation (per version and set of embeddings) that the
staff API pages and the console samples, with the same coordinates as the plain SVD, and a page
whose cost does not grow with the number of users."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from apps.collab import embedding_map as maps
from apps.collab import selectors
from apps.collab.api.views import MapPagination
from apps.collab.models import CollabModelVersion, UserEmbedding
from apps.console import collab as console

pytestmark = pytest.mark.django_db
DIMS = UserEmbedding._meta.get_field("vector").dimensions


@pytest.fixture(autouse=True)
def _fresh_process_maps():
    """Each test starts without maps held by this process (Django's cache is rolled back)."""
    maps._IN_PROCESS.clear()
    yield
    maps._IN_PROCESS.clear()


def version_with(
    n: int, number: int = 1, status: str = "active"
) -> tuple[CollabModelVersion, list[User]]:
    """A version with ``n`` users' random unit embeddings (every third without an expert)."""
    version = CollabModelVersion.objects.create(version=number, status=status, progress=1.0)
    people = User.objects.bulk_create(
        [User(username=f"map-{number}-{i}", email=f"m{number}-{i}@x.test") for i in range(n)]
    )
    rng = np.random.default_rng(number)
    vectors = rng.normal(size=(n, DIMS))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    UserEmbedding.objects.bulk_create(
        [
            UserEmbedding(
                user=person, version=version, vector=vectors[i].tolist(),
                expert=None if i % 3 == 0 else i % 4,
            )
            for i, person in enumerate(people)
        ]
    )  # fmt: skip
    return version, people


def reference_map(version: CollabModelVersion) -> list[tuple]:
    """The map's definition, written out: centre, SVD, the first two components scaled by their
    singular values, each sign fixed so the component's largest loading is positive."""
    rows = list(
        UserEmbedding.objects.filter(version=version)
        .order_by("user_id")
        .values_list("user_id", "user__username", "user__client_app_id", "expert", "vector")
    )
    matrix = np.stack([np.asarray(r[4], dtype=np.float64) for r in rows])
    u, s, vt = np.linalg.svd(matrix - matrix.mean(axis=0), full_matrices=False)
    signs = np.sign(vt[[0, 1], np.abs(vt[:2]).argmax(axis=1)])
    coords = u[:, :2] * s[:2] * signs
    return [
        (r[0], r[1], r[2], r[3], round(float(x), 6), round(float(y), 6))
        for r, (x, y) in zip(rows, coords, strict=True)
    ]


def as_tuples(points) -> list[tuple]:
    return [(p.user_id, p.username, p.client_app_id, p.expert, p.x, p.y) for p in points]


def vector_reads(queries) -> int:
    """Queries that load embedding vectors (the expensive part of computing a map)."""
    return sum('"collab_userembedding"."vector"' in q["sql"] for q in queries)


def test_the_map_keeps_the_coordinates_of_the_plain_svd_ordered_by_user_id():
    version, _ = version_with(40)
    points = selectors.embedding_map(version)
    assert as_tuples(points) == reference_map(version)
    assert [p.user_id for p in points] == sorted(p.user_id for p in points)
    assert {p.expert for p in points} == {None, 0, 1, 2, 3}  # no expert stays None
    assert selectors.embedding_map() == points  # the active version by default
    lone = CollabModelVersion.objects.create(version=2, status="trained")
    assert selectors.embedding_map(lone) == []


def test_the_map_is_computed_once_per_set_of_embeddings_and_shared_with_the_console(staff_user):
    version, people = version_with(12)
    with CaptureQueriesContext(connection) as first:
        selectors.embedding_map(version)
    assert vector_reads(first.captured_queries) == 1

    with CaptureQueriesContext(connection) as again:
        found = console.embedding_map(highlight=people[3])  # the console's sample, same map
        maps._IN_PROCESS.clear()  # another process: Django's cache has it
        selectors.embedding_map(version)
    assert vector_reads(again.captured_queries) == 0
    mine = [p for p in found.points if p.user_id == people[3].pk]
    assert as_tuples(mine) == [t for t in reference_map(version) if t[0] == people[3].pk]

    newcomer = User.objects.create(username="newcomer", email="n@x.test")
    UserEmbedding.objects.create(user=newcomer, version=version, vector=[1.0] + [0.0] * (DIMS - 1))
    with CaptureQueriesContext(connection) as changed:
        points = selectors.embedding_map(version)
    assert vector_reads(changed.captured_queries) == 1  # a new set of embeddings: recomputed
    assert as_tuples(points) == reference_map(version) and len(points) == 13


def test_a_renamed_user_shows_their_current_name():
    version, people = version_with(5)
    selectors.embedding_map(version)
    User.objects.filter(pk=people[2].pk).update(username="renamed")
    names = {p.user_id: p.username for p in selectors.embedding_map(version)}
    assert names[people[2].pk] == "renamed"
    sample, _ = selectors.embedding_map_sample(version, 100)
    assert {p.username for p in sample if p.user_id == people[2].pk} == {"renamed"}


def test_the_api_pages_the_map_by_user_id(client_for, staff_user):
    version, _ = version_with(7)
    url = f"/api/collab/versions/{version.pk}/map"
    full = reference_map(version)
    client = client_for(staff_user)

    everything = client.get(url).json()  # the default page (1,000) holds all 7
    assert everything["count"] == 7 and everything["next"] is None
    assert everything["previous"] is None
    assert [tuple(p.values()) for p in everything["results"]] == full
    assert list(everything["results"][0]) == [
        "user_id", "username", "client_app_id", "expert", "x", "y"
    ]  # fmt: skip

    page = client.get(url, {"limit": 3, "offset": 3}).json()
    assert [p["user_id"] for p in page["results"]] == [t[0] for t in full[3:6]]
    assert page["count"] == 7
    assert "offset=6" in page["next"] and "limit=3" in page["next"]
    assert "offset" not in page["previous"] and "limit=3" in page["previous"]
    last = client.get(page["next"]).json()
    assert [p["user_id"] for p in last["results"]] == [full[6][0]] and last["next"] is None
    assert client.get(url, {"offset": 50}).json()["results"] == []


def test_a_limit_over_the_maximum_answers_the_maximum(client_for, staff_user, monkeypatch):
    assert (MapPagination.default_limit, MapPagination.max_limit) == (1000, 10_000)
    monkeypatch.setattr(MapPagination, "max_limit", 4)
    version, _ = version_with(6)
    page = client_for(staff_user).get(f"/api/collab/versions/{version.pk}/map?limit=99").json()
    assert len(page["results"]) == 4 and page["count"] == 6 and "limit=4" in page["next"]


def test_a_page_costs_the_same_queries_at_5_and_at_60_users(client_for, staff_user):
    client = client_for(staff_user)
    counts = []
    for number, n in ((1, 5), (2, 60)):
        version, _ = version_with(n, number=number, status="trained")
        url = f"/api/collab/versions/{version.pk}/map"
        assert client.get(url).status_code == 200  # computed and cached
        with CaptureQueriesContext(connection) as warm:
            body = client.get(url).json()
        assert body["count"] == n and len(body["results"]) == n
        assert vector_reads(warm.captured_queries) == 0
        counts.append(len(warm.captured_queries))
    assert counts[0] == counts[1]


def test_the_map_schema_documents_paging_and_the_point(client_for, user):
    schema = client_for(user).get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/collab/versions/{id}/map"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == {"id", "limit", "offset"}  # no status filter: it is not the map's
    assert parameters["limit"]["schema"]["default"] == 1000
    assert "10,000" in parameters["limit"]["description"]
    answer = operation["responses"]["200"]["content"]["application/json"]
    page = schema["components"]["schemas"][answer["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"count", "next", "previous", "results"} <= set(page["properties"])
    point = page["properties"]["results"]["items"]["$ref"].rsplit("/", 1)[1]
    fields = schema["components"]["schemas"][point]["properties"]
    assert list(fields) == ["user_id", "username", "client_app_id", "expert", "x", "y"]
    example = next(iter(answer["examples"].values()))["value"]
    assert example["results"][0]["user_id"] == 1047 and example["count"] == 10000
    assert {"403", "404"} <= set(operation["responses"])
