"""Learning from edits: the task after commit, accepted outputs, idempotency, retries."""

from __future__ import annotations

import pytest

from apps.feedback.models import Edit
from apps.memory.models import MemoryEntry
from apps.memory.services import infer_from_edit
from apps.memory.tasks import infer_preference
from core.world.preferences import phrase_to_style
from core.world.renderer import render
from core.world.sources import make_context
from tests.support.factories import InteractionFactory

pytestmark = pytest.mark.django_db

CONTEXT = make_context("wiki", 5)
PROSE = render(CONTEXT, "summarize", {"format": "prose"})
BULLETS = render(CONTEXT, "summarize", {"format": "bullets"})


def post_edit(client, interaction, edited: str) -> dict:
    response = client.post(
        "/api/edits", {"interaction": interaction.pk, "edited": edited}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_an_edit_is_learned_by_the_task_after_commit(
    client_for, user, eager_celery, django_capture_on_commit_callbacks
):
    interaction = InteractionFactory(user=user, output=PROSE, source="wiki", prompt=CONTEXT.text)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        edit = post_edit(client_for(user), interaction, BULLETS)
    assert len(callbacks) == 2  # the inference task, then the entry's embedding
    entry = MemoryEntry.objects.get()
    assert entry.edit_id == edit["id"] and entry.origin == MemoryEntry.Origin.INFERRED
    assert "bullet" in entry.preference
    assert (entry.user, entry.source, entry.context_text) == (user, "wiki", CONTEXT.text)
    assert infer_from_edit(edit["id"]) == entry  # idempotent: one entry per edit
    assert MemoryEntry.objects.count() == 1


def test_an_edit_teaches_the_preference_used_corrected_by_what_it_moved(user):
    interaction = InteractionFactory(
        user=user, output=BULLETS, conditioning_preference="bullet points, with emojis"
    )
    revised = render(CONTEXT, "summarize", {"format": "prose"})
    edit = Edit.objects.create(
        user=user, interaction=interaction, original=BULLETS, edited=revised, distance=3
    )
    entry = infer_from_edit(edit.pk)
    # the edit moved the format; the emojis asked for stay part of the lesson (the reader alone
    # would say "prose")
    assert phrase_to_style(entry.preference) == {"format": "prose", "emoji": "yes"}


def test_accepting_an_output_unedited_stores_the_preference_used(
    client_for, user, eager_celery, django_capture_on_commit_callbacks
):
    interaction = InteractionFactory(
        user=user, output=BULLETS, conditioning_preference="bullet points, brief"
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_edit(client_for(user), interaction, BULLETS)
    entry = MemoryEntry.objects.get()
    assert entry.origin == MemoryEntry.Origin.USED and entry.preference == "bullet points, brief"


def test_accepting_an_unconditioned_output_stores_nothing(user):
    interaction = InteractionFactory(user=user, output=PROSE)
    edit = Edit.objects.create(
        user=user, interaction=interaction, original=PROSE, edited=PROSE, distance=0
    )
    assert infer_from_edit(edit.pk) is None and not MemoryEntry.objects.exists()
    assert infer_from_edit(10**12) is None  # a deleted edit: nothing to learn


def test_the_context_embedding_is_copied_from_the_interaction(user):
    interaction = InteractionFactory(user=user, output=PROSE)
    vector = [0.0] * 383 + [1.0]
    interaction.embedding, interaction.embedding_dim = vector, 384
    interaction.embedding_model = "sentence-transformers/all-MiniLM-L6-v2"
    interaction.save()
    edit = Edit.objects.create(
        user=user, interaction=interaction, original=PROSE, edited=BULLETS, distance=9
    )
    entry = infer_from_edit(edit.pk)
    assert list(entry.embedding) == vector and entry.embedding_dim == 384


def make_edit(user) -> Edit:
    interaction = InteractionFactory(user=user, output=PROSE)
    return Edit.objects.create(
        user=user, interaction=interaction, original=PROSE, edited=BULLETS, distance=9
    )


def test_a_failing_backend_is_retried_with_backoff_and_the_edit_kept(
    user, llm_settings, chat_server, eager_celery
):
    edit = make_edit(user)
    chat_server.script = [("status", 503), ("sleep", 1.0)]  # an error, then a timeout
    result = infer_preference.apply(args=[edit.pk])
    assert result.successful(), result.traceback
    assert len(chat_server.requests) == 3  # two failures retried, the third answered
    entry = MemoryEntry.objects.get(pk=result.result)
    assert entry.preference == "Bullet points, brief" and entry.edit_id == edit.pk
    assert infer_preference.autoretry_for and infer_preference.retry_backoff


def test_a_backend_that_keeps_failing_gives_up_and_keeps_the_edit(
    user, llm_settings, chat_server, eager_celery
):
    edit = make_edit(user)
    chat_server.script = [("status", 500)] * 20
    result = infer_preference.apply(args=[edit.pk])
    assert result.failed()
    assert len(chat_server.requests) == infer_preference.max_retries + 1
    assert Edit.objects.filter(pk=edit.pk).exists() and not MemoryEntry.objects.exists()


def test_the_conditioning_recorded_on_an_interaction_is_what_an_accept_stores(user):
    from apps.feedback.services import create_interaction, record_edit
    from apps.memory.inference import OfflineBackend
    from apps.memory.selectors import preference_for

    vector = [1.0] + [0.0] * 383
    learned = MemoryEntry.objects.create(
        user=user, preference="bullet points", origin=MemoryEntry.Origin.INFERRED,
        context_text=CONTEXT.text, embedding=vector,
    )  # fmt: skip
    conditioning = preference_for(user, vector, backend=OfflineBackend())
    interaction = create_interaction(
        user, prompt=CONTEXT.text, output=BULLETS, source="wiki",
        conditioning_preference=conditioning.preference, memory_entry_ids=conditioning.memory_ids,
    )  # fmt: skip
    assert interaction.memory_entry_ids == [learned.pk]
    accepted = record_edit(user, interaction.pk, edited=BULLETS)
    entry = infer_from_edit(accepted.pk)
    assert entry.origin == MemoryEntry.Origin.USED and entry.preference == "bullet points"
