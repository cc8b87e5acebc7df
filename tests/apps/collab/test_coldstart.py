"""Users outside the trained graph: adapted from a few ratings, else from the persona, else none."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from apps.collab import selectors, store
from apps.personas.models import PersonaProfile
from core.text import text_key
from tests.apps.collab.conftest import make_world, store_pairs, train_now
from tests.support.factories import ComparisonFactory, UserFactory
from workers.collab.coldstart import adapt_user
from workers.collab.gnn import load_embeddings

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def persona_vector(direction: int, noise: float, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    vector = rng.normal(0.0, noise, 384)
    vector[direction] += 1.0
    return (vector / np.linalg.norm(vector)).tolist()


def give_persona(user, direction: int, seed: int) -> None:
    """A persona whose embedding the embedding worker would have written (set directly)."""
    PersonaProfile.objects.create(
        user=user, text=f"persona {direction}", embedding=persona_vector(direction, 0.05, seed)
    )


def test_unseen_users_are_adapted_from_a_few_ratings_or_from_their_persona(copl_settings):
    world = make_world()
    for group, direction in (("format=bullets", 0), ("emoji=yes", 1)):
        for i, user in enumerate(world.seen(group)):
            give_persona(user, direction, seed=user.pk * 7 + i)
    run = train_now()

    # a user the graph never saw rates 4 comparisons of texts in the graph: "adapted"
    unseen_id, few = next(iter(world.unseen.items()))
    unseen = next(u for users in world.groups.values() for u in users if u.pk == unseen_id)
    assert selectors.user_embedding(unseen) == (None, "none")
    store_pairs(unseen, few)
    vector, how = selectors.user_embedding(unseen)
    assert how == "adapted" and vector.shape == (64,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5

    # ... exactly as the torch core's adapt_user computes it on the stored artifact
    artifact = load_embeddings(store.version_dir(run) / store.EMBEDDINGS)
    keys = [(text_key(p.chosen), text_key(p.rejected)) for p in few]
    reference = adapt_user(keys, artifact, tau=0.07)
    assert reference is not None and reference.method == "shared-response"
    assert torch.allclose(torch.from_numpy(vector), reference.embedding, atol=1e-5)

    # its nearest trained users share its (latent) group
    group = world.group_of[unseen.pk]
    nearest = selectors.similar_users(unseen, k=3)
    assert len(nearest) == 3
    assert sum(world.group_of[u.pk] == group for u, _ in nearest) >= 2

    # no ratings, but a persona near the bullets group's personas: "persona"
    newcomer = UserFactory()
    give_persona(newcomer, 0, seed=999)
    vector, how = selectors.user_embedding(newcomer)
    assert how == "persona"
    bullets = world.seen("format=bullets")
    nearest = [u for u, _ in selectors.similar_users(newcomer, k=3)]
    assert set(nearest) <= set(bullets)

    # ratings whose texts the graph never saw cannot be scored: the persona decides
    ComparisonFactory(user=newcomer, response_a="unseen text one", response_b="two", choice="a")
    assert selectors.user_embedding(newcomer)[1] == "persona"

    # nothing at all: none (and no neighbours, no starting η)
    stranger = UserFactory()
    assert selectors.user_embedding(stranger) == (None, "none")
    assert selectors.similar_users(stranger) == []
    assert selectors.starting_etas(stranger) == {}

    # a trained user is "trained", with the stored vector
    member = bullets[0]
    vector, how = selectors.user_embedding(member)
    stored = np.asarray(member.collab_userembedding_set.get(version=run).vector)
    assert how == "trained" and np.allclose(vector, stored)
