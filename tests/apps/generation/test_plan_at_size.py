"""``plan_for`` at size: what it reads per request does not grow with the user's history."""

from __future__ import annotations

import random

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.adapters.models import AdapterVersion, PreferenceCoefficient, PreferenceVector
from apps.collab.models import USER_EMBEDDING_DIMENSIONS, CollabModelVersion, UserEmbedding
from apps.feedback import services as feedback
from apps.generation.selectors import plan_for
from apps.memory.models import MemoryEntry
from core.dimensions import OFFLINE_DIMENSIONS
from core.world.renderer import render
from core.world.sources import make_context
from core.world.styles import random_style
from tests.support.factories import PersonaFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
MESSAGES = [{"role": "user", "content": "Summarize: the council approved the new tram line."}]


def unit(rng: np.random.Generator, dims: int) -> list[float]:
    vector = rng.standard_normal(dims)
    return (vector / np.linalg.norm(vector)).tolist()


def add_history(user, n: int, rng: random.Random) -> None:
    """``n`` interactions, each rated and edited through the services, and ``n`` memory
    entries."""
    vectors = np.random.default_rng(rng.randrange(1000))
    for i in range(n):
        context = make_context("news", rng.randrange(10_000))
        output = render(context, "summarize", random_style(rng))
        interaction = feedback.create_interaction(user, prompt=context.text, output=output)
        feedback.rate(user, interaction.pk, thumbs_up=rng.random() < 0.5)
        feedback.record_edit(
            user, interaction.pk, edited=render(context, "summarize", random_style(rng))
        )
        MemoryEntry.objects.create(
            user=user, context_text=context.text, preference=f"brief {i}", origin="inferred",
            embedding=unit(vectors, 384),
        )  # fmt: skip


def queries_of_plan(user) -> int:
    with CaptureQueriesContext(connection) as captured:
        plan = plan_for(user, MESSAGES)
    assert plan.adapter is not None and plan.memory_ids and plan.persona
    assert OFFLINE_DIMENSIONS[0].name in {v.name for v in plan.vectors}
    history = [
        q["sql"] for q in captured if "feedback_" in q["sql"] or "memory_memoryentry" in q["sql"]
    ]
    assert history == [] or all("LIMIT 1" in sql for sql in history), history  # no scans
    return len(captured)


def test_the_queries_of_a_plan_do_not_grow_with_the_users_history(
    user, django_assert_max_num_queries
):
    rng = random.Random(15)
    for dim in OFFLINE_DIMENSIONS[:3]:
        PreferenceVector.objects.create(
            name=dim.name, attribute=dim.attribute, positive=dim.positive,
            negative=dim.negative, base_model="m", base_fingerprint="f", rank=8,
            positive_path="p", negative_path="n",
        )  # fmt: skip
    PreferenceCoefficient.objects.create(user=user, vector_name=OFFLINE_DIMENSIONS[0].name, eta=1)
    AdapterVersion.objects.create(
        user=user, version=1, status="active", method="dpo", base_model="m",
        base_fingerprint="f", rank=8, storage_path="sha256:0",
    )  # fmt: skip
    start = {"0": {d.name: 0.8 for d in OFFLINE_DIMENSIONS}}  # CoPL's start applies to two
    copl = CollabModelVersion.objects.create(version=1, status="active", expert_eta=start)
    vectors = np.random.default_rng(0)
    for person in (user, UserFactory(), UserFactory()):
        UserEmbedding.objects.create(
            user=person, version=copl, vector=unit(vectors, USER_EMBEDDING_DIMENSIONS), expert=0
        )
    PersonaFactory(user=user)
    add_history(user, 2, rng)
    plan_for(user, MESSAGES)  # the first plan computes the η evidence from history once
    few = queries_of_plan(user)
    assert few <= 16
    add_history(user, 150, rng)
    plan_for(user, MESSAGES)  # the memory copy reads the new entries
    with django_assert_max_num_queries(few):
        queries_of_plan(user)
