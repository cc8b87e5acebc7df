"""The console's door to CoPL's Django side (``apps.collab.selectors``): how a user's embedding
was obtained, their most similar users, and the 2-D map of user embeddings.

Where ``apps.collab`` is not installed these return None, and the console says so.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from django.apps import apps

from apps.accounts.models import User


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


def _selectors() -> Any | None:
    if not apps.is_installed("apps.collab"):
        return None
    try:
        return importlib.import_module("apps.collab.selectors")
    except ImportError:
        return None


def is_available() -> bool:
    return _selectors() is not None


def embedding(user: User) -> Embedding | None:
    module = _selectors()
    if module is None:
        return None
    version = module.active_version()
    _, how = module.user_embedding(user)
    return Embedding(how, version.version if version is not None else None)


def similar_users(user: User, k: int = 5) -> list[Similar] | None:
    """The ``k`` users nearest to ``user`` in CoPL's embedding space, across every namespace
    (operators see all); None when CoPL is not installed."""
    module = _selectors()
    if module is None:
        return None
    found = module.similar_users(user, k=k, all_namespaces=True)
    return [Similar(other.pk, other.username, float(score)) for other, score in found]


def embedding_map() -> list[Any] | None:
    """Points ``(user_id, username, client_app_id, expert, x, y)`` of the active version."""
    module = _selectors()
    return None if module is None else list(module.embedding_map())


def runs(limit: int = 20) -> list[Any]:
    """CoPL training runs (``CollabModelVersion``), open first then the newest; [] without CoPL."""
    if _selectors() is None:
        return []
    from apps.collab.models import CollabModelVersion

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
    if _selectors() is None or not ids:
        return []
    from apps.collab.models import CollabModelVersion

    return [run_state(run) for run in CollabModelVersion.objects.filter(pk__in=ids)]
