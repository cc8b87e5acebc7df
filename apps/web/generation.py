"""The web UI's door to the generation service (``apps.generation``), and what it shows without it.

The UI asks for a text through ``apps.generation.services.generate(user, messages, n=…)``; the
serving process stores one Interaction per choice and the completion carries their ids. Errors
(``core.errors.GenerationError``: bad input, the serving process down) are shown on
the form. Until that app is
installed, :func:`is_available` is False and the pages say so instead of offering a button that
cannot work.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.apps import apps

from apps.accounts.models import User

log = logging.getLogger(__name__)


class GenerationUnavailable(Exception):
    """Generation is not installed on this server (yet)."""


class GenerationFailed(Exception):
    """The generation service could not answer (it says why)."""


def _generate() -> Callable[..., Any] | None:
    if not apps.is_installed("apps.generation"):
        return None
    try:
        module = importlib.import_module("apps.generation.services")
    except ImportError:
        return None
    return getattr(module, "generate", None)


def is_available() -> bool:
    return _generate() is not None


def is_running() -> bool:
    """Whether the serving process answers its health check (False when it is not installed)."""
    if not is_available():
        return False
    try:
        status = importlib.import_module("apps.generation.client").status
    except (ImportError, AttributeError):
        return True  # no health check to ask: let a request find out
    return status() is not None


def _error_class() -> type[Exception]:
    try:
        return importlib.import_module("core.errors").GenerationError
    except (ImportError, AttributeError):
        return GenerationFailed


def _ids_of(result: Any) -> list[int]:
    """The interaction ids of a completion's choices, in order (unrecorded ones left out)."""
    ids = getattr(result, "interaction_ids", None)
    if ids is None and isinstance(result, dict):
        ids = result.get("interaction_ids")
    return [int(i) for i in ids or [] if i is not None]


def generate(
    user: User, messages: Sequence[dict[str, str]], *, n: int = 1, **params: Any
) -> list[int]:
    """Generate ``n`` personalized candidates for ``messages``; returns their interaction ids."""
    service = _generate()
    if service is None:
        raise GenerationUnavailable("Generation is not available on this server yet.")
    try:
        result = service(user, list(messages), n=n, **params)
    except _error_class() as err:  # bad input, serving process down, …: said on the form
        raise GenerationFailed(getattr(err, "message", str(err))) from err
    except Exception as err:  # a bug there is logged; the person gets a message, never a 500
        log.exception("generation failed for user %s", user.pk)
        raise GenerationFailed("The generation service failed; please try again.") from err
    ids = _ids_of(result)
    if len(ids) < n:
        raise GenerationFailed(f"The generation service returned {len(ids)} of {n} candidates.")
    return ids[:n]
