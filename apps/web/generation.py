"""The web UI's door to the generation service (``apps.generation.services``).

The UI asks for ``n`` texts; the serving process stores one Interaction per choice and the
completion carries their ids. Every failure (bad input, the serving process down, a bug) becomes
:class:`GenerationFailed` with a message for the form: the person never sees a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from apps.accounts.models import User
from apps.generation import client, services
from core.errors import GenerationError

log = logging.getLogger(__name__)


class GenerationFailed(Exception):
    """The generation service could not answer (it says why)."""


def is_running() -> bool:
    """Whether the serving process answers its health check."""
    return client.status() is not None


def generate(
    user: User, messages: Sequence[dict[str, str]], *, n: int = 1, **params: Any
) -> list[int]:
    """Generate ``n`` personalized candidates for ``messages``; returns their interaction ids."""
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
    return ids[:n]
