"""What the product does with CoPL: reranking, similar users per namespace, starting η, the map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from apps.accounts.services import create_client_app
from apps.adapters import selectors as adapter_selectors
from apps.adapters.models import PreferenceCoefficient, PreferenceVector
from apps.collab import selectors, store
from apps.feedback import services as feedback
from core.world.renderer import render
from core.world.sources import make_context
from core.world.styles import default_style
from tests.apps.collab.conftest import make_world, store_pairs, train_now
from tests.support.factories import InteractionFactory, UserFactory
from workers.collab import reranking
from workers.collab.reward_artifacts import load_reward_model
from workers.collab.uses import score_texts

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
BULLETS, EMOJI = "format=bullets", "emoji=yes"


def test_reranking_scores_follow_the_personalized_reward(copl_settings):
    world = make_world()
    assert reranking.personalized_scores(1, "p", ["a", "b"]) is None  # no active version
    run = train_now()
    user = world.seen(BULLETS)[0]
    prompt = world.tests[0].prompt
    candidates = [world.tests[0].chosen, world.tests[0].rejected, "a short plain answer."]

    scores = reranking.personalized_scores(user.pk, prompt, candidates)
    model = load_reward_model(store.version_dir(run) / store.REWARD)
    vector, how = selectors.user_embedding(user)
    expected = score_texts(model, torch.from_numpy(vector), candidates, prompt)
    assert how == "trained" and scores == pytest.approx(expected, abs=1e-5)
    assert reranking.reward_model(run) is reranking.reward_model(run)  # loaded once per process

    # on fresh texts, each user's reward prefers what their group prefers, and the order flips
    # with the user: a user of the other group ranks the same pair the other way
    agree = flipped = 0
    for pair in world.tests:
        owner = world.users[pair.user_id]
        other_group = EMOJI if world.group_of[owner.pk] == BULLETS else BULLETS
        other = world.seen(other_group)[0]
        mine = reranking.personalized_scores(owner.pk, pair.prompt, [pair.chosen, pair.rejected])
        theirs = reranking.personalized_scores(other.pk, pair.prompt, [pair.chosen, pair.rejected])
        agree += mine[0] > mine[1]
        flipped += theirs[0] < theirs[1]
    assert agree >= 0.7 * len(world.tests) and flipped >= 0.7 * len(world.tests)

    # a user without any embedding is scored with the population's mean taste
    assert len(reranking.personalized_scores(UserFactory().pk, prompt, candidates)) == 3
    assert reranking.personalized_scores(user.pk, prompt, []) == []


def test_similar_users_stay_inside_the_namespace_and_the_map_shows_the_groups(copl_settings):
    people = make_world(seed=0)
    app, other_app = (create_client_app(UserFactory(), name).record for name in ("a1", "a2"))
    app_world = make_world(client_app=app, seed=1)
    run = train_now()

    person = people.seen(BULLETS)[0]
    found = selectors.similar_users(person, k=50)
    assert found and all(u.client_app_id is None and u != person for u, _ in found)
    sims = [s for _, s in found]
    assert sims == sorted(sims, reverse=True) and all(-1.0 <= s <= 1.0 for s in sims)
    end_user = app_world.seen(EMOJI)[0]
    found = selectors.similar_users(end_user, k=50)
    assert found and all(u.client_app_id == app.pk for u, _ in found)
    assert len(found) == len(app_world.users) - len(app_world.unseen) - 1
    # top neighbours share the latent group
    assert all(app_world.group_of[u.pk] == EMOJI for u, _ in found[:3])

    # an end user of an app with no trained users sees nobody; the staff console sees all
    lonely = UserFactory(client_app=other_app, external_id="x")
    store_pairs(lonely, next(iter(people.unseen.values())))
    assert selectors.user_embedding(lonely)[1] == "adapted"
    assert selectors.similar_users(lonely) == []
    assert selectors.similar_users_count(lonely, min_similarity=-1.0) == 0
    everyone = selectors.similar_users(lonely, k=5, all_namespaces=True)
    assert len(everyone) == 5 and {u.client_app_id for u, _ in everyone} <= {None, app.pk}

    points = selectors.embedding_map(run)
    assert len(points) == run.n_users and all(np.isfinite([p.x, p.y]).all() for p in points)
    xs = {g: [p.x for p in points if people.group_of.get(p.user_id) == g] for g in (BULLETS, EMOJI)}
    assert max(xs[BULLETS]) < min(xs[EMOJI]) or max(xs[EMOJI]) < min(xs[BULLETS])
    assert selectors.embedding_map() == points  # the active version by default


def make_vector(name: str, attribute: str, positive: str, negative: str) -> None:
    PreferenceVector.objects.create(
        name=name, attribute=attribute, positive=positive, negative=negative,
        base_model="m", base_fingerprint="f", rank=8, positive_path="p", negative_path="n",
    )  # fmt: skip


def test_new_users_start_with_their_neighbours_eta_in_apps_adapters(copl_settings):
    world = make_world()
    make_vector("format-bullets-vs-prose", "format", "bullets", "prose")
    make_vector("emoji-yes-vs-no", "emoji", "yes", "no")
    fitted = {BULLETS: 0.9, EMOJI: -0.7}
    for group, eta in fitted.items():
        for user in world.seen(group):
            PreferenceCoefficient.objects.create(
                user=user, vector_name="format-bullets-vs-prose", eta=eta, origin="fitted"
            )
    newcomer_id, few = next(
        (pk, p) for pk, p in world.unseen.items() if world.group_of[pk] == BULLETS
    )
    newcomer = next(u for u in world.groups[BULLETS] if u.pk == newcomer_id)
    assert adapter_selectors.etas(newcomer) == {}  # no CoPL version yet: nothing
    train_now()
    store_pairs(newcomer, few)  # after training: adapted from these, not in the graph
    assert selectors.user_embedding(newcomer)[1] == "adapted"

    start = selectors.starting_etas(newcomer)
    assert set(start) == {
        "length-short-vs-long", "format-bullets-vs-prose", "tone-casual-vs-formal",
        "emoji-yes-vs-no", "greeting-yes-vs-no", "person-second-vs-third", "question-yes-vs-no",
    }  # fmt: skip
    assert start["format-bullets-vs-prose"] > 0.6  # the bullets group's fitted η, mostly
    etas = adapter_selectors.etas(newcomer)
    assert etas == {k: start[k] for k in ("format-bullets-vs-prose", "emoji-yes-vs-no")}

    # a value the user set wins; evidence of their own replaces the collaborative start
    PreferenceCoefficient.objects.create(user=newcomer, vector_name="emoji-yes-vs-no", eta=2.0)
    assert adapter_selectors.etas(newcomer)["emoji-yes-vs-no"] == 2.0
    context = make_context("news", 7)
    prose = render(context, "summarize", default_style())
    bullets = render(context, "summarize", {**default_style(), "format": "bullets"})
    for _ in range(3):
        interaction = InteractionFactory(user=newcomer, output=prose)
        feedback.record_edit(newcomer, interaction.pk, edited=bullets)  # the η evidence follows
    assert adapter_selectors.etas(newcomer) == {"emoji-yes-vs-no": 2.0}
