"""The console's view of CoPL (``apps.collab.selectors``): how a user's embedding was obtained,
their most similar users, the 2-D map of user embeddings, and the training runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.accounts.models import User
from apps.collab import selectors
from apps.collab.models import CollabModelVersion

MAX_MAP_POINTS = 500  # drawn on a user's page; the map of 10,000 users is an even sample


@dataclass(frozen=True)
class Similar:
    user_id: int
    username: str
    similarity: float


@dataclass(frozen=True)
class Embedding:
    """Whether the user has an embedding in the active CoPL version, and how it was obtained
    (``trained``, ``adapted``, ``persona`` or ``none``)."""

    how: str
    version: int | None


def embedding(user: User) -> Embedding:
    version = selectors.active_version()
    _, how = selectors.user_embedding(user)
    return Embedding(how, version.version if version is not None else None)


def similar_users(user: User, k: int = 5) -> list[Similar]:
    """The ``k`` users nearest to ``user`` in CoPL's embedding space, across every namespace
    (operators see all)."""
    found = selectors.similar_users(user, k=k, all_namespaces=True)
    return [Similar(other.pk, other.username, float(score)) for other, score in found]


@dataclass(frozen=True)
class EmbeddingMap:
    """At most ``MAX_MAP_POINTS`` points ``(user_id, username, client_app_id, expert, x, y)`` of
    the active version (every n-th by user id, the highlighted user always among them) and how
    many users the version has."""

    points: list[Any]
    total: int


def embedding_map(highlight: User | None = None) -> EmbeddingMap:
    """The active version's map as the user page draws it: the shared, cached computation of
    :mod:`apps.collab.embedding_map` sampled to ``MAX_MAP_POINTS``, plus the highlighted user."""
    version = selectors.active_version()
    if version is None:
        return EmbeddingMap([], 0)
    sample, places = selectors.embedding_map_sample(version, MAX_MAP_POINTS)
    mine = places.point_of(highlight) if highlight is not None else None
    if mine is None:
        return EmbeddingMap(sample, len(places))
    points = [p for p in sample if p.user_id != mine.user_id]
    points.append(mine)
    return EmbeddingMap(points, len(places))


def runs(limit: int = 20) -> list[Any]:
    """CoPL training runs (``CollabModelVersion``), open first then the newest."""
    runs = CollabModelVersion.objects.all()
    open_ = runs.filter(status__in=["queued", "running"]).order_by("-version")[:limit]
    rest = runs.exclude(status__in=["queued", "running"]).order_by("-version")[:limit]
    return [*open_, *rest][:limit]


def run_state(run: Any) -> dict[str, object]:
    return {
        "id": f"copl-{run.pk}",
        "status": run.status,
        "progress": run.progress,
        "loss": run.loss,
        "attempts": run.attempts,
        "error": run.error,
        "is_open": run.is_open,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def run_states(ids: list[int]) -> list[dict[str, object]]:
    if not ids:
        return []
    return [run_state(run) for run in CollabModelVersion.objects.filter(pk__in=ids)]
