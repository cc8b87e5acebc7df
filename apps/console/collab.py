"""The console's view of CoPL (``apps.collab.selectors``): how a user's embedding was obtained,
their most similar users, the 2-D map of user embeddings, and the training runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.accounts.models import User
from apps.collab import selectors
from apps.collab.models import CollabModelVersion


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


def embedding_map() -> list[Any]:
    """Points ``(user_id, username, client_app_id, expert, x, y)`` of the active version."""
    return list(selectors.embedding_map())


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
