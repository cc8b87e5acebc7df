"""η evidence as running sums: kept by the feedback services, equal to a full recomputation."""

from __future__ import annotations

import random

import pytest

from apps.adapters import etas
from apps.adapters.models import EtaEvidence, PreferenceVector
from apps.feedback import services as feedback
from apps.feedback.models import Edit, Interaction, Rating
from core.dimensions import OFFLINE_DIMENSIONS
from core.world.renderer import render
from core.world.sources import SOURCE_NAMES, make_context
from core.world.styles import random_style
from tests.support.factories import EditFactory, InteractionFactory, RatingFactory, UserFactory

pytestmark = pytest.mark.django_db


def stored(user) -> dict[str, list[float]]:
    return EtaEvidence.objects.get(user=user).sums


def styled(rng: random.Random) -> tuple[str, str]:
    """A world context and two renderings of it in random styles (their detectors differ)."""
    context = make_context(rng.choice(SOURCE_NAMES), rng.randrange(10_000))
    return render(context, "summarize", random_style(rng)), render(
        context, "summarize", random_style(rng)
    )


def make_vector(dim) -> PreferenceVector:
    return PreferenceVector.objects.create(
        name=dim.name, attribute=dim.attribute, positive=dim.positive, negative=dim.negative,
        base_model="m", base_fingerprint="f", rank=8, positive_path="p", negative_path="n",
    )  # fmt: skip


def step(user, rng: random.Random) -> str:
    """One random write through the feedback services; what it was."""
    interactions = list(Interaction.objects.filter(user=user).values_list("pk", flat=True))
    ratings = list(Rating.objects.filter(user=user))
    edits = list(Edit.objects.filter(user=user))
    kind = rng.choice(["interaction", "rate", "rate", "update", "edit", "edit", "delete"])
    if kind == "interaction" or not interactions:
        output, _ = styled(rng)
        feedback.create_interaction(user, prompt="p", output=output)
        return "interaction"
    if kind == "rate":
        thumbs = {"thumbs_up": rng.random() < 0.5}
        label = thumbs if rng.random() < 0.5 else {"stars": rng.randint(1, 5)}
        feedback.rate(user, rng.choice(interactions), **label)  # new, or replacing the last one
    elif kind == "update" and ratings:
        change = {"stars": rng.randint(1, 5)} if rng.random() < 0.5 else {"thumbs_up": False}
        feedback.update_rating(rng.choice(ratings), **change)
    elif kind == "edit":
        interaction = Interaction.objects.get(pk=rng.choice(interactions))
        edited = rng.choice([styled(rng)[1], interaction.output])  # a no-op now and then
        feedback.record_edit(user, interaction.pk, edited=edited)
    elif kind == "delete":
        victim = rng.choice(
            [Interaction.objects.get(pk=rng.choice(interactions)), *ratings[:1], *edits[:1]]
        )
        feedback.delete(victim)
    return kind


def test_the_sums_equal_a_full_recomputation_after_random_edits_ratings_and_deletes(user):
    rng = random.Random(15)
    for _ in range(6):
        output, _ = styled(rng)
        feedback.create_interaction(user, prompt="p", output=output)
    assert not EtaEvidence.objects.filter(user=user).exists()
    etas.signal_sums(user)  # computed once (nothing yet); from now on kept by the services
    assert stored(user) == etas.sums_from_history(user)
    kinds = [step(user, rng) for _ in range(120)]
    assert {"rate", "update", "edit", "delete"} <= set(kinds)
    expected = etas.sums_from_history(user)
    assert stored(user) == expected
    assert sum(count for _, count in expected.values()) > 40  # the detectors found signals
    assert Rating.objects.filter(user=user).exists() and Edit.objects.filter(user=user).exists()


def test_a_user_without_sums_gets_them_once_from_history_and_they_go_with_their_data(user):
    from apps.privacy.services import erase_user_data

    prose = "The council met on Monday. It approved the tram line. Work starts in May."
    bullets = "- The council met on Monday.\n- It approved the tram line.\n- Work starts in May."
    for _ in range(3):  # written around the services, as a bulk load would
        EditFactory(interaction=InteractionFactory(user=user, output=prose), edited=bullets)
    RatingFactory(interaction=InteractionFactory(user=user, output=bullets), stars=5)
    assert not EtaEvidence.objects.filter(user=user).exists()
    sums = etas.signal_sums(user)
    assert sums["format-bullets-vs-prose"] == (3.5, 4)
    assert stored(user) == etas.sums_from_history(user)
    erase_user_data(user)
    assert not EtaEvidence.objects.filter(user=user).exists()
    assert etas.signal_sums(user)["format-bullets-vs-prose"] == (0.0, 0)


def test_writes_before_the_first_computation_leave_no_partial_sums(user):
    output, edited = styled(random.Random(3))
    interaction = feedback.create_interaction(user, prompt="p", output=output)
    feedback.rate(user, interaction.pk, thumbs_up=True)
    assert stored(user) is None  # a row to take turns on, no sums yet
    feedback.record_edit(user, interaction.pk, edited=edited)
    assert etas.signal_sums(user) == {
        name: (total, int(count)) for name, (total, count) in etas.sums_from_history(user).items()
    }


def test_fitting_reads_the_sums_and_follows_the_active_vectors(user, settings):
    settings.ATTUNE_MAX_FITTED_ETA = 2.0
    bullets = next(d for d in OFFLINE_DIMENSIONS if d.attribute == "format")
    emoji = next(d for d in OFFLINE_DIMENSIONS if d.attribute == "emoji")
    make_vector(bullets)
    prose = "The council met on Monday. It approved the tram line. Work starts in May."
    listed = "- The council met on Monday.\n- It approved the tram line.\n- Work starts in May."
    for _ in range(3):
        interaction = feedback.create_interaction(user, prompt="p", output=prose)
        feedback.record_edit(user, interaction.pk, edited=listed)
    assert etas.fit_etas(user) == {bullets.name: 2.0}
    for _ in range(3):  # emoji evidence arrives while no emoji vector is active
        interaction = feedback.create_interaction(user, prompt="p", output="Great day! 😀")
        feedback.rate(user, interaction.pk, thumbs_up=False)
    make_vector(emoji)  # made active later: fitted from the sums kept all along
    sums = etas.sums_from_history(user)
    fitted = etas.fit_etas(user)
    assert fitted == {
        name: round(sums[name][0] / sums[name][1] * 2.0, 3) for name in (bullets.name, emoji.name)
    }
    assert fitted[emoji.name] < 0 and sums[emoji.name][1] == 3
    assert etas.fit_etas(UserFactory()) == {}
