"""The web UI's door to the generation service (``apps.generation.services``).

The UI asks for ``n`` texts; the serving process stores one Interaction per choice and the
completion carries their ids. Every failure (bad input, the serving process down, a bug) becomes
:class:`GenerationFailed` with a message for the form: the person never sees a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from apps.accounts.models import User
from apps.generation import client, services
from core.errors import GenerationError
from core.serving import describe_progress

log = logging.getLogger(__name__)


class GenerationFailed(Exception):
    """The generation service could not answer (it says why)."""


@dataclass(frozen=True)
class ServiceState:
    """What the Ask pages say about generation: ``ok``, ``loading`` (with how far) or ``down``."""

    state: str
    detail: str = ""


def service_state() -> ServiceState:
    """The generation service as a person should hear about it: ready when any replica is, else
    preparing its model (and how far), else down."""
    replicas = client.statuses()
    if any(r.state == "ok" for r in replicas):
        return ServiceState("ok")
    for replica in replicas:
        progress = (replica.health or {}).get("loading")
        if replica.state == "loading" and isinstance(progress, dict):
            return ServiceState("loading", describe_progress(progress))
    return ServiceState("down")


@dataclass(frozen=True)
class Generated:
    """The new interactions' ids, and what to tell the person (a cut text, a memory that fell
    back to one entry) or ""."""

    ids: list[int]
    notice: str = ""


def generate(
    user: User, messages: Sequence[dict[str, str]], *, n: int = 1, **params: Any
) -> Generated:
    """Generate ``n`` personalized candidates for ``messages``."""
    try:
        completion = services.generate(user, list(messages), n=n, **params)
    except GenerationError as err:  # bad input, serving process down, …: said on the form
        raise GenerationFailed(err.message) from err
    except Exception as err:  # a bug there is logged; the person gets a message, never a 500
        log.exception("generation failed for user %s", user.pk)
        raise GenerationFailed("The generation service failed; please try again.") from err
    ids = [i for i in completion.interaction_ids if i is not None]
    if len(ids) < n:
        raise GenerationFailed(f"The generation service returned {len(ids)} of {n} candidates.")
    notes = (completion.attune.get(key) for key in ("context_cut", "memory_degraded"))
    notice = " ".join(str(note.get("message", "")) for note in notes if isinstance(note, dict))
    return Generated(ids[:n], notice.strip())
