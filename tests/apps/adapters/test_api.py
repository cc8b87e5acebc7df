"""Adapter API: fit requests (409 with too few pairs), jobs, versions, promote, roll back, η."""

from __future__ import annotations

import pytest

from apps.adapters import services
from apps.adapters.models import AdapterVersion, FitJob, PreferenceCoefficient, PreferenceVector
from core.dimensions import DIMENSION_NAMES
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
    assert response.json() == {
        "detail": "A fit needs at least 8 preference pairs; this user has 3. "
        "Edit outputs or compare responses to add pairs.",
        "needed": 8,
        "available": 3,
    }
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
    services.record_adapter(services.start_job(job.pk), promote=False, **{
        "method": "dpo", "base_model": "m", "base_fingerprint": "f", "rank": 8,
        "storage_path": "x",
    })  # fmt: skip
    assert services.maybe_trigger_fit(user) is None  # no new pairs since that fit


def test_one_job_records_one_version_even_when_retried(user):
    job = FitJob.objects.create(user=user)
    lease = services.start_job(job.pk)
    fields = {"method": "dpo", "base_model": "m", "base_fingerprint": "f", "rank": 8}
    first = services.record_adapter(lease, promote=True, storage_path="a", **fields)
    again = services.record_adapter(lease, promote=True, storage_path="b", **fields)
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
    none = client.post("/api/adapters/roll-back")
    assert none.status_code == 409
    assert none.json() == {"detail": "There is no active adapter to roll back."}


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
    assert too_big.status_code == 400
    assert too_big.json() == {
        "coefficients": [
            "format-bullets-vs-prose: |η| must be at most 2.0 (larger values break the model)"
        ]
    }
    both = client.put(
        "/api/preference-coefficients",
        {"coefficients": {"nope": 1, "format-bullets-vs-prose": -3}},
        format="json",
    )
    assert both.status_code == 400
    assert both.json() == {
        "coefficients": [
            "unknown preference vector 'nope'",
            "format-bullets-vs-prose: |η| must be at most 2.0 (larger values break the model)",
        ]
    }
    assert PreferenceCoefficient.objects.get(user=user).eta == 1.5  # nothing stored
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
    assert bad.status_code == 400
    assert bad.json() == {"dimension": [f"choose one of {sorted(DIMENSION_NAMES)}"]}
    assert FitJob.objects.count() == 1


def test_the_service_refuses_unknown_vectors_and_etas_out_of_bounds(user):
    """The η rules live in ``set_etas``: every caller (API, web sliders, fitting) gets them."""
    from core.errors import InvalidValue

    PreferenceVector.objects.create(
        name="format-bullets-vs-prose", attribute="format", positive="bullets", negative="prose",
        base_model="m", base_fingerprint="f", rank=8, positive_path="p", negative_path="n",
    )  # fmt: skip
    for etas in (
        {"nope": 0.5},
        {"format-bullets-vs-prose": 2.5},
        {"format-bullets-vs-prose": float("nan")},
    ):
        with pytest.raises(InvalidValue) as refused:
            services.set_etas(user, etas)
        assert refused.value.field == "coefficients" and len(refused.value.messages) == 1
    assert not PreferenceCoefficient.objects.exists()
    assert services.set_etas(user, {"format-bullets-vs-prose": -2.0}) == {
        "format-bullets-vs-prose": -2.0
    }


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
