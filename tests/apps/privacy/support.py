"""Filled histories for the erasure and export tests: rows of every kind a user can own, rows of
other users that point at them (so each ``on_delete`` is exercised), and counts per model."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from apps.accounts.models import User
from apps.adapters.models import AdapterVersion, FitJob, PreferenceCoefficient, PreferenceVector
from apps.collab.models import CollabModelVersion, UserEmbedding
from apps.feedback.models import Comparison, Edit, Interaction, Rating
from apps.memory.models import MemoryEntry, PendingInference
from apps.personas.models import PersonaProfile
from apps.privacy.relations import owned_models
from tests.apps.common.size import fill_history
from tests.support.testapp.models import Note


@dataclass(frozen=True)
class Crossing:
    """Rows of ``other`` that refer to ``owner``'s rows (what erasing ``owner`` must honour)."""

    rating: Rating  # CASCADE from owner's interaction: goes with it
    comparison: Comparison  # SET_NULL from owner's interaction: stays, without it
    memory: MemoryEntry  # SET_NULL from owner's edit: stays, without it
    vector: PreferenceVector  # shared; SET_NULL from owner's fit job: stays, without it


def fill_everything(user: User, interactions: int) -> None:
    """``interactions`` interactions with ratings, edits, comparisons and memory entries (SQL,
    :func:`tests.apps.common.size.fill_history`), and one or a few rows of every other kind."""
    fill_history(user.pk, interactions)
    now = timezone.now()
    edits = Edit.objects.filter(user=user).order_by("pk").values_list("pk", flat=True)[:3]
    PendingInference.objects.bulk_create(
        PendingInference(edit_id=pk, next_attempt_at=now) for pk in edits
    )
    job = FitJob.objects.create(user=user, status=FitJob.Status.SUCCEEDED)
    AdapterVersion.objects.create(
        user=user, version=1, method="dpo", fit_job=job, base_model="m", base_fingerprint="f",
        rank=8, storage_path="sha256:" + "0" * 64, status=AdapterVersion.Status.ACTIVE,
    )  # fmt: skip
    FitJob.objects.create(user=user)
    PreferenceCoefficient.objects.create(user=user, vector_name="bullets", eta=1.5)
    PersonaProfile.objects.create(user=user, text="a teacher", attributes={"tone": "casual"})
    version, _ = CollabModelVersion.objects.get_or_create(version=1)
    UserEmbedding.objects.create(user=user, version=version, vector=[0.125] * 64, expert=1)
    Note.objects.create(user=user, text="a note", embedding=[1, 2, 3])


def cross(owner: User, other: User) -> Crossing:
    """Rows of ``other`` that point at ``owner``'s latest interaction, a new edit and fit job."""
    interaction = Interaction.objects.filter(user=owner).latest("pk")
    edit = Edit.objects.create(  # an edit not learned yet (an edit teaches one entry at most)
        user=owner, interaction=interaction, original="a", edited="a", distance=0
    )
    job = FitJob.objects.create(user=owner, kind=FitJob.Kind.PREFERENCE_VECTOR)
    return Crossing(
        rating=Rating.objects.create(user=other, interaction=interaction, stars=5),
        comparison=Comparison.objects.create(
            user=other,
            prompt="p",
            response_a="a",
            response_b="b",
            choice="a",
            interaction_a=interaction,
            interaction_b=interaction,
        ),
        memory=MemoryEntry.objects.create(
            user=other, context_text="c", preference="brief", origin="inferred", edit=edit
        ),
        vector=PreferenceVector.objects.create(
            name=f"v{job.pk}",
            attribute="a",
            positive="p",
            negative="n",
            base_model="m",
            base_fingerprint="f",
            rank=8,
            positive_path="x",
            negative_path="y",
            fit_job=job,
        ),
    )


def rows_of(user: User) -> dict[str, int]:
    """How many rows of each owned model ``user`` has (models with none left out)."""
    counts = {m._meta.label: m.objects.filter(user=user).count() for m in owned_models()}
    return {label: n for label, n in counts.items() if n}


def table_sizes() -> dict[str, int]:
    """Rows per table of every owned model and of what refers to them (for 'nothing else went')."""
    tables = [m._meta.db_table for m in owned_models()]
    tables += [PendingInference._meta.db_table, PreferenceVector._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in tables))
        return dict(cursor.fetchall())
