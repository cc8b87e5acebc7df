"""Adapter API: fit requests (409 with too few pairs), jobs, versions, promote, roll back, η."""

from __future__ import annotations

import pytest

from apps.adapters import services
from apps.adapters.models import AdapterVersion, FitJob, PreferenceVector
from tests.apps.adapters.conftest import give_pairs

pytestmark = pytest.mark.django_db


def make_version(user, version: int, status: str = "candidate", **extra) -> AdapterVersion:
    return AdapterVersion.objects.create(
        user=user, version=version, status=status, method="dpo", base_model="m",
        base_fingerprint="f", rank=8, storage_path=f"users/{user.pk}/v{version}", **extra,
    )  # fmt: skip


def test_fit_with_too_few_pairs_is_a_clear_409(client_for, user):
    give_pairs(user, 3)
    response = client_for(user).post("/api/fit-jobs")
    assert response.status_code == 409
    body = response.json()
    assert body["needed"] == 8 and body["available"] == 3
    assert "at least 8" in body["detail"]
    assert not FitJob.objects.exists()


def test_fit_request_queues_one_job_and_repeats_return_it(
    client_for, user, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        "apps.adapters.tasks.fit_job.apply_async",
        lambda args, queue: sent.append((args, queue)) or type("R", (), {"id": "task-1"})(),
    )
    give_pairs(user, 9)
    client = client_for(user)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/fit-jobs")
    second = client.post("/api/fit-jobs")
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert sent == [([first.json()["id"]], "gpu")]
    job = FitJob.objects.get()
    assert job.celery_task_id == "task-1" and job.edit_cutoff > 0
    assert client.get(f"/api/fit-jobs/{job.pk}").json()["status"] == "queued"


def test_threshold_trigger_counts_new_pairs_only(user, settings, monkeypatch):
    monkeypatch.setattr("apps.adapters.services._enqueue", lambda job: None)
    settings.ATTUNE_FIT_TRIGGER_PAIRS = 10
    give_pairs(user, 9)
    assert services.maybe_trigger_fit(user) is None
    give_pairs(user, 1)
    job = services.maybe_trigger_fit(user)
    assert job is not None and job.trigger == "threshold"
    services.record_adapter(job, promote=False, **{
        "method": "dpo", "base_model": "m", "base_fingerprint": "f", "rank": 8,
        "storage_path": "x",
    })  # fmt: skip
    assert services.maybe_trigger_fit(user) is None  # no new pairs since that fit


def test_one_job_records_one_version_even_when_retried(user):
    job = FitJob.objects.create(user=user)
    fields = {"method": "dpo", "base_model": "m", "base_fingerprint": "f", "rank": 8}
    first = services.record_adapter(job, promote=True, storage_path="a", **fields)
    again = services.record_adapter(job, promote=True, storage_path="b", **fields)
    assert first.pk == again.pk and AdapterVersion.objects.count() == 1
    assert services.start_job(job.pk) is None  # a redelivered task finds the job finished


def test_promote_and_roll_back(client_for, user):
    v1 = make_version(user, 1)
    v2 = make_version(user, 2)
    client = client_for(user)
    assert client.post(f"/api/adapters/{v1.pk}/promote").json()["status"] == "active"
    assert client.post(f"/api/adapters/{v2.pk}/promote").json()["status"] == "active"
    v1.refresh_from_db()
    assert v1.status == "retired"
    back = client.post("/api/adapters/roll-back")
    assert back.status_code == 200 and back.json()["id"] == v1.pk
    assert AdapterVersion.objects.get(pk=v2.pk).status == "retired"
    to_base = client.post("/api/adapters/roll-back")
    assert to_base.json()["active"] is None
    assert client.post("/api/adapters/roll-back").status_code == 409


def test_other_users_adapters_and_jobs_answer_404(client_for, user, other_user):
    theirs = make_version(other_user, 1)
    job = FitJob.objects.create(user=other_user)
    client = client_for(user)
    assert client.get(f"/api/adapters/{theirs.pk}").status_code == 404
    assert client.post(f"/api/adapters/{theirs.pk}/promote").status_code == 404
    assert client.get(f"/api/fit-jobs/{job.pk}").status_code == 404
    assert client.get("/api/adapters").json()["results"] == []
    theirs.refresh_from_db()
    assert theirs.status == "candidate"


def test_coefficients_are_validated_and_per_user(client_for, user, other_user):
    PreferenceVector.objects.create(
        name="format-bullets-vs-prose", attribute="format", positive="bullets", negative="prose",
        base_model="m", base_fingerprint="f", rank=8, positive_path="p", negative_path="n",
    )  # fmt: skip
    client = client_for(user)
    ok = client.put(
        "/api/preference-coefficients",
        {"coefficients": {"format-bullets-vs-prose": 1.5}},
        format="json",
    )
    assert ok.status_code == 200 and ok.json()["coefficients"] == {"format-bullets-vs-prose": 1.5}
    too_big = client.put(
        "/api/preference-coefficients",
        {"coefficients": {"format-bullets-vs-prose": 9}},
        format="json",
    )
    assert too_big.status_code == 400 and "coefficients" in too_big.json()
    unknown = client.put(
        "/api/preference-coefficients", {"coefficients": {"nope": 1}}, format="json"
    )
    assert unknown.status_code == 400
    assert client_for(other_user).get("/api/preference-coefficients").json()["coefficients"] == {}


def test_only_staff_fit_preference_vectors(client_for, user, staff_user, monkeypatch):
    monkeypatch.setattr("apps.adapters.services._enqueue", lambda job: None)
    body = {"dimension": "format-bullets-vs-prose"}
    assert (
        client_for(user).post("/api/preference-vectors/fit", body, format="json").status_code == 403
    )
    staff = client_for(staff_user)
    assert staff.post("/api/preference-vectors/fit", body, format="json").status_code == 202
    bad = staff.post("/api/preference-vectors/fit", {"dimension": "nope"}, format="json")
    assert bad.status_code == 400 and "dimension" in bad.json()


def test_coefficients_fitted_from_edits_keep_user_set_values(client_for, user):
    from tests.support.factories import EditFactory, InteractionFactory

    for name, attribute, pos, neg in (
        ("format-bullets-vs-prose", "format", "bullets", "prose"),
        ("emoji-yes-vs-no", "emoji", "yes", "no"),
    ):
        PreferenceVector.objects.create(
            name=name, attribute=attribute, positive=pos, negative=neg, base_model="m",
            base_fingerprint="f", rank=8, positive_path="p", negative_path="n",
        )  # fmt: skip
    prose = "The council met on Monday. It approved the tram line. Work starts in May."
    bullets = "- The council met on Monday.\n- It approved the tram line.\n- Work starts in May."
    for _ in range(3):
        EditFactory(interaction=InteractionFactory(user=user, output=prose), edited=bullets)
    client = client_for(user)
    client.put(
        "/api/preference-coefficients", {"coefficients": {"emoji-yes-vs-no": -1}}, format="json"
    )
    response = client.post("/api/preference-coefficients/fit")
    assert response.status_code == 200
    body = response.json()
    assert body["fitted"] == {"format-bullets-vs-prose": 1.5}
    assert body["coefficients"] == {"format-bullets-vs-prose": 1.5, "emoji-yes-vs-no": -1.0}
