"""Reads for CoPL: versions, a user's embedding (trained, adapted, from the persona), similar
users, starting η and the embedding map. Torch-free (numpy and pgvector).

Namespaces: people who log in to Attune share one namespace; each client app's end users form
their own. :func:`similar_users` only returns users of the queried user's namespace unless the
caller (the staff console) asks for all of them, so an app never learns about another app's users.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Literal

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from pgvector.django import CosineDistance

from apps.accounts.models import User
from apps.collab import coldstart, store
from apps.collab import embedding_map as maps
from apps.collab.embedding_map import MapPoint, MapPoints
from apps.collab.models import CollabModelVersion, UserEmbedding
from apps.feedback.selectors import (
    Cutoffs,
    comparison_pairs,
    edit_pairs,
    pair_count,
    preference_pairs,
    rating_pairs,
)
from apps.personas.models import PersonaProfile
from core.errors import ArtifactError
from core.text import text_key

log = logging.getLogger(__name__)
How = Literal["trained", "adapted", "persona", "none"]
HOW_EXPLAINED: dict[str, str] = {
    "trained": "learned from your ratings together with everyone's (you are in the trained graph)",
    "adapted": "adapted from your few ratings: the people who chose what you chose",
    "persona": "from your persona profile: the people whose personas are nearest to yours",
    "none": "not available yet: rate or compare some responses, or write a persona profile",
}


def active_version() -> CollabModelVersion | None:
    return CollabModelVersion.objects.filter(status=CollabModelVersion.Status.ACTIVE).first()


def open_run() -> CollabModelVersion | None:
    """The run queued or running now, if any."""
    return (
        CollabModelVersion.objects.filter(
            status__in=[CollabModelVersion.Status.QUEUED, CollabModelVersion.Status.RUNNING]
        )
        .order_by("-version")
        .first()
    )


def last_cutoffs() -> Cutoffs | None:
    """The data cutoffs of the newest run that did not fail."""
    run = (
        CollabModelVersion.objects.exclude(status=CollabModelVersion.Status.FAILED)
        .order_by("-version")
        .first()
    )
    if run is None:
        return None
    return Cutoffs.of(run)


@dataclass(frozen=True)
class DataSummary:
    pairs: int
    users: int


def data_summary(upto: Cutoffs | None = None, enough: tuple[int, int] | None = None) -> DataSummary:
    """How many pairs (and users with pairs) a run would train on, read in bulk and never held;
    with ``enough`` = (pairs, users) the count stops once both are reached (a request only needs
    to know that much, and the exact figures when there are fewer)."""
    pairs, users = 0, set()
    scope = {"upto": upto}
    for pair in chain(edit_pairs(**scope), comparison_pairs(**scope), rating_pairs(**scope)):
        pairs += 1
        users.add(pair.user_id)
        if enough is not None and pairs >= enough[0] and len(users) >= enough[1]:
            break
    return DataSummary(pairs, len(users))


def new_pairs_since(after: Cutoffs | None) -> int:
    """Pairs (edits, comparisons, rating pairs) given after the cutoffs of the last run (a
    rating pair counts when its newer rating is)."""
    return pair_count(after=after)


# -- a user's embedding ---------------------------------------------------------------------------
def namespace_filter(user: User, prefix: str = "user__") -> Q:
    """Rows whose user is in ``user``'s namespace (the same client app, or no app)."""
    if user.client_app_id is None:
        return Q(**{f"{prefix}client_app__isnull": True})
    return Q(**{f"{prefix}client_app_id": user.client_app_id})


def version_files(version: CollabModelVersion) -> store.VersionFiles:
    """The checked files of a trained version (raises :class:`ArtifactError`)."""
    return store.VersionFiles(store.version_dir(version))


def embeddings_artifact(version: CollabModelVersion) -> store.EmbeddingsArtifact:
    """The version's user and response embeddings (numpy), loaded once per process."""
    return store.embeddings_of(version)


def population_embedding(version: CollabModelVersion) -> np.ndarray:
    """The population's mean taste: the normalized mean of every trained user's embedding."""
    return coldstart.normalize(store.embeddings_of(version).users.mean(axis=0))


def trained_row(user: User, version: CollabModelVersion) -> UserEmbedding | None:
    return UserEmbedding.objects.filter(version=version, user=user).first()


def adapted_embedding(user: User, version: CollabModelVersion) -> coldstart.Adapted | None:
    """The optimization-free adaptation from the user's current pairs (None: nothing usable)."""
    keys = [(text_key(p.chosen), text_key(p.rejected)) for p in preference_pairs(user=user)]
    if not keys:
        return None
    try:
        artifact = store.embeddings_of(version)
    except (ArtifactError, OSError) as err:
        log.warning("CoPL %s: cannot adapt user %s: %s", version.label, user.pk, err)
        return None
    return coldstart.adapt(
        keys, artifact, tau=settings.ATTUNE_COPL_TAU, top=settings.ATTUNE_COPL_NEIGHBORS
    )


def persona_embedding(user: User, version: CollabModelVersion) -> np.ndarray | None:
    """The softmax(cosine / tau)-weighted mean embedding of the trained users whose personas are
    nearest to the user's (None without an embedded persona or trained users with personas)."""
    persona = (
        PersonaProfile.objects.filter(user=user, embedding__isnull=False)
        .values_list("embedding", flat=True)
        .first()
    )
    if persona is None:
        return None
    nearest = list(
        PersonaProfile.objects.filter(
            embedding__isnull=False, user__collab_userembedding_set__version=version
        )
        .exclude(user=user)
        .annotate(distance=CosineDistance("embedding", persona))
        .order_by("distance")
        .values_list("user_id", "distance")[: settings.ATTUNE_COPL_NEIGHBORS]
    )
    if not nearest:
        return None
    vectors = dict(
        UserEmbedding.objects.filter(
            version=version, user_id__in=[u for u, _ in nearest]
        ).values_list("user_id", "vector")
    )
    similarity = np.array([1.0 - d for _, d in nearest])
    matrix = np.stack([np.asarray(vectors[u]) for u, _ in nearest])
    return coldstart.weighted_mean(matrix, similarity, settings.ATTUNE_COPL_TAU)


def user_embedding(user: User) -> tuple[np.ndarray | None, How]:
    """The user's embedding in the active version and how it was obtained: ``trained`` (the user
    is in the graph), ``adapted`` (from their few pairs, no training), ``persona`` (no usable
    pairs: from the nearest personas) or ``none`` (vector None)."""
    version = active_version()
    if version is None:
        return None, "none"
    row = trained_row(user, version)
    if row is not None:
        return np.asarray(row.vector, dtype=np.float32), "trained"
    adapted = adapted_embedding(user, version)
    if adapted is not None:
        return adapted.vector, "adapted"
    persona = persona_embedding(user, version)
    if persona is not None:
        return persona, "persona"
    return None, "none"


# -- nearest users --------------------------------------------------------------------------------
def _nearest(queryset: QuerySet, vector: np.ndarray, k: int) -> list[UserEmbedding]:
    """The ``k`` rows nearest by cosine; exact order even when the HNSW index serves a filtered
    query (pgvector's iterative scan keeps going until enough rows pass the filter)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        return list(
            queryset.annotate(distance=CosineDistance("vector", vector)).order_by("distance")[:k]
        )


def similar_users(
    user: User, k: int = 5, *, all_namespaces: bool = False
) -> list[tuple[User, float]]:
    """The ``k`` trained users whose embeddings are nearest to ``user``'s, with the cosine
    similarity, nearest first; only from ``user``'s namespace unless ``all_namespaces`` (staff
    console). Empty when there is no active version or no embedding for the user."""
    version = active_version()
    vector, _ = user_embedding(user)
    if version is None or vector is None or k <= 0:
        return []
    queryset = UserEmbedding.objects.filter(version=version).exclude(user=user)
    if not all_namespaces:
        queryset = queryset.filter(namespace_filter(user))
    rows = _nearest(queryset.select_related("user"), vector, k)
    return [(row.user, round(1.0 - float(row.distance), 6)) for row in rows]


def similar_users_count(user: User, min_similarity: float | None = None) -> int:
    """How many users of the user's namespace have a cosine similarity of at least
    ``min_similarity`` (``ATTUNE_COPL_SIMILAR_MIN``) with them: a number, never identities."""
    version = active_version()
    vector, _ = user_embedding(user)
    if version is None or vector is None:
        return 0
    threshold = settings.ATTUNE_COPL_SIMILAR_MIN if min_similarity is None else min_similarity
    return (
        UserEmbedding.objects.filter(namespace_filter(user), version=version)
        .exclude(user=user)
        .alias(distance=CosineDistance("vector", vector))
        .filter(distance__lte=1.0 - threshold)
        .count()
    )


# -- starting coefficients ------------------------------------------------------------------------
def _own_etas(user_ids: Iterable[int]) -> dict[int, dict[str, float]]:
    """η that users set or had fitted, by user (cold-start values are not evidence)."""
    from apps.adapters.models import PreferenceCoefficient

    found: dict[int, dict[str, float]] = {}
    rows = PreferenceCoefficient.objects.filter(user_id__in=list(user_ids)).exclude(
        origin=PreferenceCoefficient.Origin.COLD_START
    )
    for user_id, name, eta in rows.values_list("user_id", "vector_name", "eta"):
        found.setdefault(user_id, {})[name] = eta
    return found


def starting_etas(user: User) -> dict[str, float]:
    """Starting η per preference vector for ``user`` from the nearest trained users: the
    softmax(cosine / tau)-weighted mean over the ``ATTUNE_COPL_NEIGHBORS`` nearest (the user
    themself included when trained) of each neighbour's η, where a neighbour's η is the value
    they set or had fitted, else the reward model's starting η for their expert
    (``workers.collab.uses.starting_eta``, computed per expert at training). Neighbours come from
    the user's namespace; with none there, from all users but with the reward's η only (another
    app's users' own η stay theirs). Empty without an active version or an embedding."""
    version = active_version()
    vector, _ = user_embedding(user)
    if version is None or vector is None:
        return {}
    k = settings.ATTUNE_COPL_NEIGHBORS
    base = UserEmbedding.objects.filter(version=version)
    rows = _nearest(base.filter(namespace_filter(user)), vector, k)
    own = _own_etas(row.user_id for row in rows) if rows else {}
    if not rows:
        rows = _nearest(base, vector, k)
    if not rows:
        return {}
    etas = []
    for row in rows:
        expert = version.expert_eta.get(str(row.expert), {}) if row.expert is not None else {}
        etas.append({**expert, **own.get(row.user_id, {})})
    similarity = np.array([1.0 - float(row.distance) for row in rows])
    weights = coldstart.softmax(similarity, settings.ATTUNE_COPL_TAU)
    limit = min(settings.ATTUNE_COPL_MAX_STARTING_ETA, settings.ATTUNE_MAX_ABS_ETA)
    keys = sorted({key for eta in etas for key in eta})
    result = {}
    for key in keys:
        value = float(sum(w * eta.get(key, 0.0) for w, eta in zip(weights, etas, strict=True)))
        result[key] = round(max(-limit, min(limit, value)), 3)
    return result


# -- the embedding map ----------------------------------------------------------------------------
def embedding_map(version: CollabModelVersion | int | None = None) -> list[MapPoint]:
    """2-D coordinates of every trained user of ``version`` (default: the active one), ordered
    by user id: the first two principal components of the embeddings (numpy SVD; signs fixed so
    the largest loading of each component is positive), computed once per version and set of
    embeddings (:mod:`apps.collab.embedding_map`). For staff only: it names users."""
    if version is None:
        version = active_version()
        if version is None:
            return []
    return maps.points(version)[:]


def embedding_map_points(version: CollabModelVersion | int) -> MapPoints:
    """The same map as a lazy list (``len()`` and slices, one query per slice): the API pages it
    without naming the users it does not show."""
    return maps.points(version)


def embedding_map_sample(
    version: CollabModelVersion | int, at_most: int
) -> tuple[list[MapPoint], maps.Places]:
    """Every n-th user of the map by id (at most ``at_most``) and every user's place (to find
    one user among them): what the console draws."""
    return maps.sample(version, at_most)
