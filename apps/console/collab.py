"""The console's view of CoPL (``apps.collab.selectors``): how a user's embedding was obtained,
their most similar users, the 2-D map of user embeddings, and the training runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db.models import Count, Max

from apps.accounts.models import User
from apps.collab import selectors
from apps.collab.models import CollabModelVersion, UserEmbedding

MAX_MAP_POINTS = 500  # drawn on a user's page; the map of 10,000 users is an even sample
MAP_TTL = 3600
_LOADED: dict[str, Any] = {}


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


@dataclass(frozen=True)
class _Places:
    """Every user's place on the map: ids in order, their (x, y) and expert (-1: none)."""

    ids: np.ndarray
    xy: np.ndarray
    experts: np.ndarray

    def of(self, user_id: int) -> tuple[float, float, int | None] | None:
        at = int(np.searchsorted(self.ids, user_id))
        if at == len(self.ids) or self.ids[at] != user_id:
            return None
        expert = int(self.experts[at])
        return float(self.xy[at, 0]), float(self.xy[at, 1]), None if expert < 0 else expert


def _map_of(version: CollabModelVersion) -> tuple[list[Any], _Places]:
    """The sample and every user's place, computed once per version and set of embeddings (the
    principal components of 10,000 embeddings are not recomputed on every page)."""
    stamp = UserEmbedding.objects.filter(version=version).aggregate(n=Count("pk"), last=Max("pk"))
    key = f"console:embedding-map:{version.pk}:{stamp['n']}:{stamp['last']}:{MAX_MAP_POINTS}"
    found = _LOADED.get(key) or cache.get(key)
    if found is None:
        points = selectors.embedding_map(version)  # ordered by user id
        step = max(1, -(-len(points) // MAX_MAP_POINTS))
        places = _Places(
            np.array([p.user_id for p in points], dtype=np.int64),
            np.array([(p.x, p.y) for p in points], dtype=np.float64).reshape(-1, 2),
            np.array([-1 if p.expert is None else p.expert for p in points], dtype=np.int32),
        )
        found = (points[::step], places)
        cache.set(key, found, MAP_TTL)
    if key not in _LOADED:  # this process keeps the latest map (~300 KB at 10,000 users)
        _LOADED.clear()
        _LOADED[key] = found
    return found


def embedding_map(highlight: User | None = None) -> EmbeddingMap:
    version = selectors.active_version()
    if version is None:
        return EmbeddingMap([], 0)
    sample, places = _map_of(version)
    place = places.of(highlight.pk) if highlight is not None else None
    if place is None:
        return EmbeddingMap(sample, len(places.ids))
    x, y, expert = place
    points = [p for p in sample if p.user_id != highlight.pk]
    points.append(
        selectors.MapPoint(highlight.pk, highlight.username, highlight.client_app_id, expert, x, y)
    )
    return EmbeddingMap(points, len(places.ids))


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
