"""CoPL API: staff-only versions and training (409 with too little data), progress, activation,
the map and a user's similar users; ``/api/collab/me`` and one's own embedding rows for everyone."""

from __future__ import annotations

import numpy as np
import pytest

from apps.accounts.services import create_client_app, end_user_for
from apps.collab.models import CollabModelVersion, UserEmbedding
from core import config
from tests.support.factories import ComparisonFactory, UserFactory
from tests.support.processes import imports_torch

pytestmark = pytest.mark.django_db


def unit(*values: float) -> list[float]:
    vector = np.zeros(64)
    vector[: len(values)] = values
    return (vector / np.linalg.norm(vector)).tolist()


def fabricate(users_vectors, status: str = "active", version: int = 1) -> CollabModelVersion:
    """A version row with stored embeddings (no training: for reads and permissions)."""
    run = CollabModelVersion.objects.create(version=version, status=status, n_users=2)
    for user, vector in users_vectors:
        UserEmbedding.objects.create(user=user, version=run, vector=vector, expert=0, n_pairs=3)
    return run


def test_staff_endpoints_answer_403_to_non_staff(client_for, user, staff_user):
    run = fabricate([(user, unit(1.0))])
    client = client_for(user)
    for method, path in (
        ("get", "/api/collab/versions"),
        ("post", "/api/collab/versions"),
        ("get", f"/api/collab/versions/{run.pk}"),
        ("post", f"/api/collab/versions/{run.pk}/activate"),
        ("get", f"/api/collab/versions/{run.pk}/map"),
        ("get", f"/api/collab/users/{user.pk}"),
    ):
        response = getattr(client, method)(path)
        assert response.status_code == 403, (method, path)
        assert "permission" in response.json()["detail"]
    assert client_for(staff_user).get("/api/collab/versions").status_code == 200
    assert CollabModelVersion.objects.count() == 1


def test_training_request_409_then_202_then_200(
    client_for, staff_user, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.ATTUNE_COPL_MIN_PAIRS, settings.ATTUNE_COPL_MIN_USERS = 4, 3
    client = client_for(staff_user)
    ComparisonFactory(choice="a")
    response = client.post("/api/collab/versions")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Training CoPL needs at least 4 preference pairs; there are 1. Users add pairs "
        "by comparing responses, editing outputs, or rating several outputs of the same prompt.",
        "needed": 4,
        "available": 1,
        "what": "preference pairs",
    }
    only_one = UserFactory()
    for _ in range(3):
        ComparisonFactory(user=only_one, choice="b")
    ComparisonFactory(choice="tie")  # a tie is no pair: its user does not count
    response = client.post("/api/collab/versions")
    body = response.json()
    assert response.status_code == 409
    assert (body["needed"], body["available"], body["what"]) == (3, 2, "users with pairs")
    assert not CollabModelVersion.objects.exists()
    settings.ATTUNE_COPL_MIN_USERS = 2

    sent = []
    monkeypatch.setattr(
        "apps.collab.tasks.train.apply_async",
        lambda args, queue: sent.append((args, queue)) or type("R", (), {"id": "task-7"})(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/collab/versions")
    second = client.post("/api/collab/versions")
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"] and first.json()["status"] == "queued"
    assert sent == [([first.json()["id"]], "gpu")]
    run = CollabModelVersion.objects.get()
    assert run.celery_task_id == "task-7" and run.requested_by == staff_user
    assert run.comparison_cutoff > 0 and run.version == 1

    CollabModelVersion.objects.filter(pk=run.pk).update(progress=0.42, stage="gnn", loss=0.3)
    detail = client.get(f"/api/collab/versions/{run.pk}").json()
    assert (detail["progress"], detail["stage"], detail["loss"]) == (0.42, "gnn", 0.3)
    assert client.get("/api/collab/versions/999999").status_code == 404


def test_activate_rolls_back_to_a_trained_version(client_for, staff_user, user, settings, tmp_path):
    settings.ATTUNE_COPL_ROOT = tmp_path
    old = fabricate([(user, unit(1.0))], status="retired", version=1)
    new = fabricate([(user, unit(0.0, 1.0))], status="active", version=2)
    client = client_for(staff_user)
    response = client.post(f"/api/collab/versions/{old.pk}/activate")
    assert response.status_code == 409 and "no files" in response.json()["detail"]
    files = tmp_path / "v0001"
    (files / "embeddings").mkdir(parents=True)
    (files / "embeddings" / "meta.json").write_text("{}")
    ref = config.artifact_store().put(files)
    CollabModelVersion.objects.filter(pk=old.pk).update(storage_path=ref)
    assert client.post(f"/api/collab/versions/{old.pk}/activate").json()["status"] == "active"
    new.refresh_from_db()
    assert new.status == "retired"
    CollabModelVersion.objects.filter(pk=new.pk).update(storage_path="../outside")
    response = client.post(f"/api/collab/versions/{new.pk}/activate")
    assert response.status_code == 409 and "../outside" in response.json()["detail"]
    CollabModelVersion.objects.filter(pk=new.pk).update(storage_path="sha256:" + "0" * 64)
    response = client.post(f"/api/collab/versions/{new.pk}/activate")
    assert response.status_code == 409 and "v2" in response.json()["detail"]  # not in the store
    failed = CollabModelVersion.objects.create(version=3, status="failed")
    response = client.post(f"/api/collab/versions/{failed.pk}/activate")
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Only a trained version can be activated; {failed.label} is failed."
    }


def test_me_tells_how_and_how_many_but_never_who(client_for, user, other_user, staff_user):
    client = client_for(user)
    body = client.get("/api/collab/me").json()
    assert (body["version"], body["how"], body["similar_users"]) == (None, "none", 0)
    assert "rate or compare" in body["explanation"]
    twin, far = UserFactory(username="secret-twin"), UserFactory()
    fabricate([(user, unit(1.0, 0.1)), (twin, unit(1.0, 0.2)), (far, unit(-1.0))])
    body = client.get("/api/collab/me").json()
    assert body["version"] == 1 and body["how"] == "trained" and body["similar_users"] == 1
    assert "secret-twin" not in str(body) and str(twin.pk) not in str(body.values())

    # an app's end user only counts people of that app
    app = create_client_app(UserFactory(), "app").record
    end_user = end_user_for(app, "alice")
    UserEmbedding.objects.create(
        user=end_user, version=CollabModelVersion.objects.get(), vector=unit(1.0, 0.15)
    )
    assert client.get("/api/collab/me").json()["similar_users"] == 1
    app_client = client_for(app.owner)
    app_key = create_client_app(app.owner, "second").key
    app_client.credentials(HTTP_AUTHORIZATION=f"Bearer {app_key}", HTTP_X_ATTUNE_USER="bob")
    assert app_client.get("/api/collab/me").json()["how"] == "none"

    # the staff console sees who, with similarities, for any user
    staff = client_for(staff_user).get(f"/api/collab/users/{user.pk}?k=2").json()
    assert [s["user_id"] for s in staff["similar"]] == [twin.pk, far.pk]
    assert staff["how"] == "trained" and staff["similar"][0]["username"] == "secret-twin"
    wide = client_for(staff_user).get(f"/api/collab/users/{user.pk}?k=2&all_namespaces=true")
    assert [s["user_id"] for s in wide.json()["similar"]] == [end_user.pk, twin.pk]
    assert client_for(staff_user).get(f"/api/collab/users/{user.pk}?k=0").status_code == 400
    assert client_for(staff_user).get("/api/collab/users/999999").status_code == 404


def test_own_embeddings_are_listed_and_others_answer_404(client_for, user, other_user, staff_user):
    run = fabricate([(user, unit(1.0)), (other_user, unit(0.0, 1.0))])
    mine = UserEmbedding.objects.get(user=user)
    theirs = UserEmbedding.objects.get(user=other_user)
    client = client_for(user)
    listed = client.get("/api/collab/embeddings").json()["results"]
    assert [row["id"] for row in listed] == [mine.pk]
    assert listed[0]["version"] == run.version and "vector" not in listed[0]
    assert client.get(f"/api/collab/embeddings/{mine.pk}").status_code == 200
    assert client.get(f"/api/collab/embeddings/{theirs.pk}").status_code == 404
    assert client.get("/api/collab/embeddings/abc").status_code == 404
    assert len(client_for(staff_user).get("/api/collab/embeddings").json()["results"]) == 2
    points = client_for(staff_user).get(f"/api/collab/versions/{run.pk}/map").json()["results"]
    assert {p["user_id"] for p in points} == {user.pk, other_user.pk}


def test_collab_endpoints_are_in_the_schema(client_for, user):
    schema = client_for(user).get("/api/schema/?format=json").json()
    for path in (
        "/api/collab/me",
        "/api/collab/versions",
        "/api/collab/versions/{id}",
        "/api/collab/versions/{id}/activate",
        "/api/collab/versions/{id}/map",
        "/api/collab/users/{user_id}",
        "/api/collab/embeddings",
    ):
        assert path in schema["paths"], path
    assert "409" in schema["paths"]["/api/collab/versions"]["post"]["responses"]


def test_the_web_side_of_collab_imports_no_torch():
    assert not imports_torch(
        "apps.collab.api.views", "apps.collab.selectors", "apps.collab.services",
        "workers.collab.reranking", "apps.collab.tasks", "apps.collab.store",
        "apps.adapters.etas",
    )  # fmt: skip


def test_a_version_whose_files_are_gone_degrades_without_errors(client_for, user, other_user):
    from workers.collab.reranking import personalized_scores

    fabricate([(other_user, unit(1.0))])  # active, but no files on disk
    ComparisonFactory(user=user, response_a="a", response_b="b", choice="a")
    response = client_for(user).get("/api/collab/me")
    assert response.status_code == 200 and response.json()["how"] == "none"
    assert personalized_scores(user.pk, "p", ["a", "b"]) is None
    assert personalized_scores(other_user.pk, "p", ["a", "b"]) is None
