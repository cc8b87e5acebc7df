"""The loop benchmark's view into its scratch database: the client app and personas it seeds,
the poller that notes when edits become retrievable memory, and the checks afterwards.

This process becomes a Django client of the scratch database (as the soak bench's seeding
does); the platform itself runs in its own processes.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.25


def _django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")
    import django

    django.setup()


def seed_app(database_url: str, users: Path, persona_configs: Sequence[str]) -> str:
    """A client app (its key returned) and, for the configurations that use personas, each
    person's end user with their population description as persona text."""
    _django(database_url)

    from apps.accounts.models import User
    from apps.accounts.services import create_client_app, end_user_for
    from apps.personas.services import set_persona
    from simulator.population import load_people

    owner = User.objects.create_user(username="loop-app-owner")
    issued = create_client_app(owner, "bench loop")
    for config in persona_configs:
        for person in load_people(users, prefix=f"{config}-"):
            if person.user.description:
                set_persona(
                    end_user_for(issued.record, person.end_user), text=person.user.description
                )
    return issued.key


class LagPoller(threading.Thread):
    """Notes, every ``POLL_SECONDS``, the edits whose memory entry has become retrievable (it
    has its embedding: the next request's retrieval sees it)."""

    def __init__(self) -> None:
        super().__init__(name="loop-lag-poller", daemon=True)
        self.seen: dict[int, datetime] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        from django.db import close_old_connections

        from apps.memory.models import MemoryEntry

        while not self._halt.is_set():
            try:
                ready = MemoryEntry.objects.filter(
                    edit__isnull=False, embedding__isnull=False
                ).values_list("edit_id", flat=True)
                now = datetime.now(UTC)
                for edit_id in ready:
                    self.seen.setdefault(edit_id, now)
            except Exception:  # the database restarting: try again
                close_old_connections()
            self._halt.wait(POLL_SECONDS)
        close_old_connections()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)

    def lags(self) -> dict[str, list[tuple[float, float]]]:
        """Per configuration, for each edit learned: (when it was committed, as a Unix time;
        seconds until its entry was retrievable)."""
        from apps.feedback.models import Edit

        per: dict[str, list[tuple[float, float]]] = {}
        rows = Edit.objects.filter(pk__in=list(self.seen)).values_list(
            "pk", "created_at", "user__external_id"
        )
        for pk, created, external in rows:
            lag = max(0.0, (self.seen[pk] - created).total_seconds())
            per.setdefault(config_of(external), []).append((created.timestamp(), lag))
        return per


def config_of(end_user: str | None) -> str:
    """The configuration an end user played in: the longest configuration name that prefixes
    their name (``memory+persona-teacher`` is not ``memory``'s)."""
    from bench.loop import CONFIGS

    names = sorted(CONFIGS, key=len, reverse=True)
    return next((n for n in names if (end_user or "").startswith(f"{n}-")), "")


def verify_writes(acknowledged: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """Every write the API acknowledged (kind, id) is a row; fit jobs by status."""
    from apps.adapters.models import FitJob
    from apps.feedback.models import Comparison, Edit, Rating

    models = {"edit": Edit, "rating": Rating, "comparison": Comparison}
    wanted: dict[str, set[int]] = {kind: set() for kind in models}
    for kind, pk in acknowledged:
        wanted[kind].add(int(pk))
    found = {kind: models[kind].objects.filter(pk__in=ids).count() for kind, ids in wanted.items()}
    jobs: dict[str, Counter[str]] = {}
    for end_user, status in FitJob.objects.values_list("user__external_id", "status"):
        jobs.setdefault(config_of(end_user), Counter())[status] += 1
    return {
        "acknowledged": sum(len(ids) for ids in wanted.values()),
        "stored": sum(found.values()),
        "by_kind": {kind: [len(wanted[kind]), found[kind]] for kind in models},
        "fit_jobs": {config: dict(counts) for config, counts in jobs.items()},
        "checked_at": time.time(),
    }
