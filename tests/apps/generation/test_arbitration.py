"""Layer arbitration: the policy over arms, the evidence read from answers and their edits, and
what ``plan_for`` leaves out for a user whose adapter hurts."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.adapters.models import AdapterVersion
from apps.feedback.models import Interaction
from apps.generation import arbitration
from apps.generation.arbitration import decide
from apps.generation.selectors import arbitration_of, plan_for
from tests.apps.generation.test_layers import MESSAGES, personalized_user
from tests.support.factories import EditFactory, InteractionFactory, RatingFactory, UserFactory


@pytest.fixture(autouse=True)
def arbitration_on(settings):
    settings.ATTUNE_ARBITRATION = True  # off in the test settings, for the other tests' sake


def test_a_layer_is_tried_both_ways_then_kept_only_while_it_costs_no_more():
    rng = random.Random(0)
    tries = [decide([9, 9, 9], [1], 0.0, 3, rng) for _ in range(200)]  # a coin while lacking
    assert {reason for _, reason in tries} == {"trying"}
    assert 70 < sum(applied for applied, _ in tries) < 130
    assert decide([2, 3, 4], [10, 12, 9], 0.0, 3, rng) == (True, "best")
    assert decide([10, 12, 9], [2, 3, 4], 0.0, 3, rng) == (False, "best")
    assert decide([4, 3, 2], [2, 3, 4], 0.0, 3, rng) == (True, "best")  # ties keep it
    assert decide([2, 3, 4], [10, 12, 9], 1.0, 3, rng) == (False, "exploring")


def answer(user, layers, cost=None, liked=False, adapter_version="", **fields):
    interaction = InteractionFactory(
        user=user, layers=list(layers), adapter_version=adapter_version, **fields
    )
    if cost is not None:
        EditFactory(interaction=interaction, distance=cost)
    if liked:
        RatingFactory(interaction=interaction, stars=None, thumbs_up=True)
    return interaction


def hurting_adapter_user():
    """A user with every layer whose answers with the adapter cost much more to edit, and
    with the vectors a little more; the persona costs nothing either way. Every combination
    was tried (as arbitration's coins do), twice."""
    user = personalized_user()
    label = f"user-{user.pk}-v1"
    for persona in ((), ("persona",)):
        for adapter in ((), ("adapter",)):
            for vectors in ((), ("vectors",)):
                cost = 2 + (18 if adapter else 0) + (3 if vectors else 0)
                for _ in range(2):
                    answer(user, ("memory", *persona, *adapter, *vectors), cost=cost,
                           adapter_version=label if adapter else "")  # fmt: skip
    return user


@pytest.mark.django_db
def test_evidence_is_the_cost_that_followed_answers_with_and_without_each_layer():
    user = personalized_user()
    answer(user, ("memory",), cost=6)
    answer(user, ("memory",), liked=True)  # a thumbs up without an edit costs 0
    answer(user, ("memory",))  # no feedback: no evidence
    answer(user, ("memory", "adapter"), cost=3, adapter_version="user-1-v1")
    answer(user, ("memory", "adapter"), cost=1, adapter_version="old-version")  # another adapter
    answer(user, ("persona",), cost=50)  # without the memory: says nothing about a layer
    found = arbitration.evidence(user, ["memory"], ["adapter", "persona"], "user-1-v1", None)
    assert sorted(found["adapter"][0]) == [3] and sorted(found["adapter"][1]) == [0, 6]
    assert found["persona"][0] == [] and sorted(found["persona"][1]) == [0, 3, 6]
    later = timezone.now() + timedelta(seconds=1)
    found = arbitration.evidence(user, ["memory"], ["adapter"], "user-1-v1", later)
    assert found == {"adapter": ([], [])}


@pytest.mark.django_db
def test_memory_alone_is_chosen_for_a_user_whose_adapter_hurts(settings):
    settings.ATTUNE_ARBITRATION_EXPLORE = 0.0
    user = hurting_adapter_user()
    choice = arbitration_of(user)
    assert choice.layers == ("memory", "persona")
    by_layer = {e.layer: e for e in choice.evidence}
    assert by_layer["adapter"].applied is False and by_layer["adapter"].reason == "best"
    assert (by_layer["adapter"].with_mean, by_layer["adapter"].without_mean) == (21.5, 3.5)
    assert by_layer["persona"].applied is True  # no worse with it
    plan = plan_for_without_embedding(user)
    assert plan.adapter is None and plan.etas == {}
    assert dict(plan.layers_off) == {"adapter": "arbitration", "vectors": "arbitration"}
    assert plan.layers_report("", {})["off"] == {"adapter": "arbitration", "vectors": "arbitration"}


def plan_for_without_embedding(user, **kwargs):
    """plan_for with the memory's retrieval answered without the embedding model."""
    from unittest import mock

    from apps.memory.cipher import Conditioning

    with mock.patch(
        "apps.memory.selectors.preference_for", return_value=Conditioning("brief", (1,))
    ):
        return plan_for(user, MESSAGES, **kwargs)


@pytest.mark.django_db
def test_a_request_that_keeps_the_adapter_gets_it_and_arbitration_can_be_off(settings):
    settings.ATTUNE_ARBITRATION_EXPLORE = 0.0
    user = hurting_adapter_user()
    kept = plan_for_without_embedding(user, requested_kept=("adapter",))
    assert kept.adapter is not None and kept.etas == {}  # the vectors still cost more
    settings.ATTUNE_ARBITRATION = False  # every available layer
    plan = plan_for_without_embedding(user)
    assert plan.adapter is not None and plan.etas and dict(plan.layers_off) == {}


@pytest.mark.django_db
def test_a_new_adapter_version_starts_the_evidence_over(settings):
    settings.ATTUNE_ARBITRATION_EXPLORE = 0.0
    user = hurting_adapter_user()
    AdapterVersion.objects.filter(user=user).update(status="retired")
    AdapterVersion.objects.create(
        user=user, version=2, status="active", method="dpo", base_model="attune/style-lm",
        base_fingerprint="f", rank=4, storage_path="sha256:" + "1" * 64,
        activated_at=timezone.now(),
    )  # fmt: skip
    choice = arbitration_of(user)
    assert all(not e.with_costs and not e.without_costs for e in choice.evidence)
    assert {e.reason for e in choice.evidence} == {"trying"}
    assert Interaction.objects.filter(user=user).count() == 16  # nothing was lost


@pytest.mark.django_db
def test_the_user_and_staff_see_the_choice_and_its_evidence(client, settings):
    settings.ATTUNE_ARBITRATION_EXPLORE = 0.0
    user = hurting_adapter_user()
    user.save()  # the factory sets the password on the instance only: the session needs it
    client.force_login(user)
    page = client.get("/me").content.decode()
    assert 'id="arbitration-evidence"' in page
    assert "Next text: <strong>memory + persona</strong>" in page
    assert "21.5 words" in page and "3.5 words" in page  # the adapter's evidence both ways
    operator = UserFactory(is_staff=True)
    operator.save()
    client.force_login(operator)
    console = client.get(f"/console/users/{user.pk}").content.decode()
    assert 'id="arbitration-evidence"' in console
    assert "Next text: <strong>memory + persona</strong>" in console


@pytest.mark.django_db
def test_a_user_with_nothing_to_choose_between_is_told_so(client):
    user = UserFactory()
    user.save()
    client.force_login(user)
    page = client.get("/me").content.decode()
    assert "Nothing learned yet" in page and 'id="arbitration-evidence"' not in page


@pytest.mark.django_db
def test_the_api_shows_the_layers_of_an_answer_and_clients_cannot_set_them(client_for):
    user = personalized_user()
    shaped = answer(user, ("memory", "adapter"), cost=3)
    api = client_for(user)
    assert api.get(f"/api/interactions/{shaped.pk}").json()["layers"] == ["memory", "adapter"]
    posted = api.post(
        "/api/interactions", {"prompt": "p", "output": "o", "layers": ["adapter"]}, format="json"
    )
    assert posted.status_code == 201 and posted.json()["layers"] == []
