"""Errors that services raise and the API turns into JSON answers (see ``apps.common.api``)."""

from __future__ import annotations


class ReferenceNotFound(Exception):
    """A request named an object (in ``field``) that does not exist or is not the caller's.

    Answered 404 with ``{field: [message]}``: another user's object and a missing one look alike.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
