"""No edit is lost: an edit waits (``PendingInference``) until it is learned; a task that gives
up, or never runs (its worker died, its message was lost), leaves it waiting; the sweep learns it
once the backend answers again, oldest first, capped, at most one entry per edit. The backend is
a real loopback HTTP server (``chat_server``)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.feedback.models import Edit
from apps.feedback.services import record_edit
from apps.memory.llm import breaker
from apps.memory.models import MemoryEntry, PendingInference
from apps.memory.services import _claim_due, retry_delay, sweep_pending
from apps.memory.tasks import infer_preference, sweep_inference
from core.world.renderer import render
from core.world.sources import make_context
from tests.support.factories import InteractionFactory

pytestmark = pytest.mark.django_db

CONTEXT = make_context("wiki", 5)
PROSE = render(CONTEXT, "summarize", {"format": "prose"})
BULLETS = render(CONTEXT, "summarize", {"format": "bullets"})


def stored_edit(user, django_capture_on_commit_callbacks, run_task: bool) -> Edit:
    """An edit stored as the API stores it; its task runs (eagerly) only when ``run_task``."""
    interaction = InteractionFactory(user=user, output=PROSE, prompt=CONTEXT.text)
    with django_capture_on_commit_callbacks(execute=run_task):
        return record_edit(user, interaction.pk, edited=BULLETS)


def test_a_task_that_gives_up_leaves_the_edit_waiting_and_the_sweep_learns_it(
    user, llm_settings, chat_server, eager_celery, django_capture_on_commit_callbacks
):
    llm_settings.ATTUNE_INFERENCE_SWEEP_AFTER_SECONDS = 0  # due again at once after a failure
    chat_server.script = [("status", 500)] * (infer_preference.max_retries + 1)
    edit = stored_edit(user, django_capture_on_commit_callbacks, run_task=True)
    pending = PendingInference.objects.get(edit=edit)  # the task gave up; the edit waits
    assert pending.attempts == infer_preference.max_retries + 1
    assert pending.last_error == "http_error" and not MemoryEntry.objects.exists()

    assert sweep_inference.apply().result == 1  # the backend answers again
    entry = MemoryEntry.objects.get()
    assert entry.edit == edit and entry.preference == "Bullet points, brief"
    assert not PendingInference.objects.exists()
    assert sweep_pending() == 0  # nothing left; and the task, run again, learns nothing new
    assert infer_preference.apply(args=[edit.pk]).result == entry.pk
    assert MemoryEntry.objects.count() == 1


def test_an_edit_whose_task_never_ran_is_learned_by_the_sweep_once_due(
    user, llm_settings, chat_server, django_capture_on_commit_callbacks
):
    llm_settings.ATTUNE_INFERENCE_SWEEP_AFTER_SECONDS = 120
    edit = stored_edit(user, django_capture_on_commit_callbacks, run_task=False)
    assert sweep_pending() == 0  # its task has its chance first
    PendingInference.objects.filter(edit=edit).update(next_attempt_at=timezone.now())
    assert sweep_pending() == 1
    assert MemoryEntry.objects.get().edit == edit and not PendingInference.objects.exists()


def make_waiting(user, count: int) -> list[Edit]:
    edits = []
    for _ in range(count):
        interaction = InteractionFactory(user=user, output=PROSE, prompt=CONTEXT.text)
        edit = Edit.objects.create(
            user=user, interaction=interaction, original=PROSE, edited=BULLETS, distance=9
        )
        PendingInference.objects.create(edit=edit, next_attempt_at=timezone.now())
        edits.append(edit)
    return edits


def test_the_sweep_takes_the_oldest_first_and_at_most_its_batch(user, llm_settings, chat_server):
    edits = make_waiting(user, 3)
    assert sweep_pending(limit=2) == 2
    learned = set(MemoryEntry.objects.values_list("edit_id", flat=True))
    assert learned == {edits[0].pk, edits[1].pk}
    assert list(PendingInference.objects.values_list("edit_id", flat=True)) == [edits[2].pk]


def test_the_sweep_stops_at_the_first_failure_and_the_rest_stay_due(
    user, llm_settings, chat_server
):
    llm_settings.ATTUNE_INFERENCE_SWEEP_AFTER_SECONDS = 60
    edits = make_waiting(user, 3)
    chat_server.script = [("answer", "Brief."), ("status", 503)]
    assert sweep_pending() == 1 and len(chat_server.requests) == 2  # the third was not asked
    failed = PendingInference.objects.get(edit=edits[1])
    assert failed.attempts == 1 and failed.last_error == "http_error"
    assert failed.next_attempt_at > timezone.now()  # backed off
    untried = PendingInference.objects.get(edit=edits[2])
    assert untried.attempts == 0 and untried.next_attempt_at <= timezone.now()
    assert sweep_pending() == 1  # the next run: the untried one; the failed one waits its turn
    assert set(MemoryEntry.objects.values_list("edit_id", flat=True)) == {
        edits[0].pk, edits[2].pk,
    }  # fmt: skip


def test_nothing_is_claimed_or_sent_while_the_backend_rests(user, llm_settings, chat_server):
    make_waiting(user, 2)
    llm_settings.ATTUNE_LLM_BREAKER_SECONDS = 30
    chat_server.script = [("status", 500)]
    assert sweep_pending() == 0 and len(chat_server.requests) == 1
    assert sweep_pending() == 0 and len(chat_server.requests) == 1  # resting: not asked
    assert PendingInference.objects.filter(attempts=0).count() == 1
    breaker.clear()  # the rest is over and the backend is back
    assert sweep_pending() == 1  # the untried one; the failed one is backed off


def test_concurrent_sweeps_claim_different_edits(user, llm_settings):
    make_waiting(user, 3)
    first, second = _claim_due(2), _claim_due(2)
    assert len(first) == 2 and len(second) == 1 and not set(first) & set(second)
    assert _claim_due(5) == []


def test_the_back_off_doubles_up_to_its_cap(settings):
    settings.ATTUNE_INFERENCE_SWEEP_AFTER_SECONDS = 60
    settings.ATTUNE_INFERENCE_SWEEP_MAX_BACKOFF_SECONDS = 900
    delays = [retry_delay(n).total_seconds() for n in (1, 2, 3, 4, 5, 50)]
    assert delays == [60, 120, 240, 480, 900, 900]


def test_an_edit_that_teaches_nothing_stops_waiting(user, llm_settings):
    interaction = InteractionFactory(user=user, output=PROSE)  # no preference was used
    accepted = Edit.objects.create(
        user=user, interaction=interaction, original=PROSE, edited=PROSE, distance=0
    )
    PendingInference.objects.create(edit=accepted, next_attempt_at=timezone.now())
    assert sweep_pending() == 1
    assert not PendingInference.objects.exists() and not MemoryEntry.objects.exists()


def test_the_pages_say_an_edit_waits_to_be_learned(client, user, llm_settings, chat_server):
    (edit,) = make_waiting(user, 1)
    user.save()  # the factory set the password on the instance only; the session checks it
    client.force_login(user)
    assert b"waiting-edits" in client.get("/me").content  # "1 of your edits is waiting …"
    fresh = client.get(f"/i/{edit.interaction_id}").content
    assert b"Attune is reading your edit" in fresh  # no failure yet: just reading
    chat_server.script = [("status", 500)]
    sweep_pending()
    page = client.get(f"/i/{edit.interaction_id}/learned").json()
    assert page["pending"] and "could not reach the language model" in page["html"]
    assert "1 try so far" in page["html"]
    sweep_pending_now(edit)
    assert b"waiting-edits" not in client.get("/me").content


def sweep_pending_now(edit: Edit) -> None:
    """Make ``edit`` due and sweep (the backend answers by default)."""
    PendingInference.objects.filter(edit=edit).update(next_attempt_at=timezone.now())
    assert sweep_pending() == 1
