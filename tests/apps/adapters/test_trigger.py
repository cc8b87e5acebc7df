"""The threshold trigger: new pairs stored through the API queue one fit when they reach it."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from apps.adapters.models import FitJob
from apps.adapters.tasks import check_fit_trigger, fit_job
from apps.feedback.models import Edit
from tests.apps.adapters.conftest import give_pairs
from tests.support.factories import InteractionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def gpu_sends(monkeypatch):
    """The fit tasks sent to the ``gpu`` queue (recorded, not run: no GPU worker here)."""
    sent: list[dict] = []

    def apply_async(args, queue):
        sent.append({"args": args, "queue": queue})
        return SimpleNamespace(id=f"task-{len(sent)}")

    monkeypatch.setattr(fit_job, "apply_async", apply_async)
    return sent


@pytest.fixture
def memory_calls(monkeypatch):
    """Edits handed to CIPHER memory (recorded; its inference is tested in tests/apps/memory)."""
    seen: list[int] = []
    monkeypatch.setattr("apps.feedback.services.schedule_inference", lambda e: seen.append(e.pk))
    return seen


def post_edit(client, user, edited: str = "- short\n- bullets") -> dict:
    interaction = InteractionFactory(user=user, output="A long paragraph of prose about it.")
    body = {"interaction": interaction.pk, "edited": edited}
    response = client.post("/api/edits", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_crossing_the_threshold_queues_exactly_one_fit(
    client_for, user, settings, eager_celery_raising, gpu_sends, memory_calls,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    assert settings.ATTUNE_FIT_TRIGGER_PAIRS == 16
    client = client_for(user)
    give_pairs(user, 14)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        post_edit(client, user)  # the 15th pair
    assert len(callbacks) == 0 and not FitJob.objects.exists() and gpu_sends == []
    post_edit(client, user, edited="A long paragraph of prose about it.")  # no change: no pair
    assert not FitJob.objects.exists()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        edit = post_edit(client, user)  # the 16th
    assert len(callbacks) == 2  # the trigger check, then the fit task it queued
    job = FitJob.objects.get()
    assert (job.user, job.kind, job.trigger) == (user, FitJob.Kind.USER_ADAPTER, "threshold")
    assert job.status == FitJob.Status.QUEUED and job.edit_cutoff == edit["id"]
    assert gpu_sends == [{"args": [job.pk], "queue": "gpu"}]
    job.refresh_from_db()
    assert job.celery_task_id == "task-1"

    with django_capture_on_commit_callbacks(execute=True):
        post_edit(client, user)  # the 17th, while the fit is queued: nothing more
    assert FitJob.objects.count() == 1 and len(gpu_sends) == 1
    assert check_fit_trigger.apply(args=[user.pk]).get() is None  # a late task: still one job
    assert FitJob.objects.count() == 1
    assert len(memory_calls) == 4  # every edit still goes to CIPHER memory


def test_the_next_fit_counts_pairs_after_the_last_one(
    client_for, user, settings, eager_celery_raising, gpu_sends, memory_calls,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    settings.ATTUNE_FIT_TRIGGER_PAIRS = 3
    settings.ATTUNE_FIT_MIN_PAIRS = 2
    client = client_for(user)
    give_pairs(user, 2)
    with django_capture_on_commit_callbacks(execute=True):
        post_edit(client, user)
    job = FitJob.objects.get()
    FitJob.objects.filter(pk=job.pk).update(status=FitJob.Status.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=True):
        post_edit(client, user)
        post_edit(client, user)
    assert FitJob.objects.count() == 1  # 2 new pairs since the fit: below the threshold
    with django_capture_on_commit_callbacks(execute=True):
        post_edit(client, user)
    assert FitJob.objects.count() == 2 and len(gpu_sends) == 2


def test_no_fit_starts_by_itself_for_a_user_who_turned_the_weights_off(
    client_for, user, settings, eager_celery_raising, gpu_sends, memory_calls,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    settings.ATTUNE_FIT_TRIGGER_PAIRS = 3
    settings.ATTUNE_FIT_MIN_PAIRS = 2
    client = client_for(user)
    assert client.patch("/api/layers", {"adapter": False}, format="json").status_code == 200
    give_pairs(user, 2)
    with django_capture_on_commit_callbacks(execute=True):
        post_edit(client, user)
    assert FitJob.objects.count() == 1  # the sliders still use what a fit learns

    FitJob.objects.update(status=FitJob.Status.SUCCEEDED)
    assert client.patch("/api/layers", {"vectors": False}, format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(4):
            post_edit(client, user)
    assert FitJob.objects.count() == 1 and len(gpu_sends) == 1
    assert len(memory_calls) == 5  # memory still learns every edit
    assert client.post("/api/fit-jobs", {}, format="json").status_code == 202  # asked: runs


def test_decided_comparisons_are_pairs_and_ties_are_not(
    client_for, user, settings, eager_celery_raising, gpu_sends, monkeypatch,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    monkeypatch.setattr("apps.feedback.services.schedule_embedding", lambda model: None)
    settings.ATTUNE_FIT_TRIGGER_PAIRS = settings.ATTUNE_FIT_MIN_PAIRS = 2
    client = client_for(user)
    body = {"prompt": "Greet.", "response_a": "Hello.", "response_b": "Hi!"}
    with django_capture_on_commit_callbacks(execute=True):
        for choice in ("tie", "a", "tie"):
            response = client.post("/api/comparisons", {**body, "choice": choice}, format="json")
            assert response.status_code == 201, response.json()
    assert not FitJob.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/comparisons", {**body, "choice": "b"}, format="json")
    assert response.status_code == 201
    job = FitJob.objects.get()
    assert job.trigger == "threshold" and gpu_sends == [{"args": [job.pk], "queue": "gpu"}]


def test_a_broker_failure_is_logged_and_the_edit_kept(
    client_for, user, monkeypatch, memory_calls, caplog, django_capture_on_commit_callbacks
):
    def refuse(*args, **kwargs):
        raise OSError("broker down")

    monkeypatch.setattr(check_fit_trigger, "delay", refuse)
    give_pairs(user, 15)
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        edit = post_edit(client_for(user), user)
    assert Edit.objects.filter(pk=edit["id"]).exists() and not FitJob.objects.exists()
    assert "broker down" in caplog.text


def test_the_task_skips_a_user_that_is_gone(db):
    assert check_fit_trigger.apply(args=[10**9]).get() is None
