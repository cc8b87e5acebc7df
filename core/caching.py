"""A one-slot per-process cache for artifacts of versioned models (pure Python)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class Versioned(Protocol):
    """A stored model version: its primary key and where its files are."""

    pk: int
    storage_path: str


V = TypeVar("V", bound=Versioned)


class NewestVersionCache(Generic[V, T]):
    """One artifact per process, loaded once: the one of the newest version asked for (a new
    version replaces it); thread-safe."""

    def __init__(self, load: Callable[[V], T]) -> None:
        self._load = load
        self._key: tuple[int, str] | None = None
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self, version: V) -> T:
        key = (version.pk, version.storage_path)
        with self._lock:
            if self._key != key or self._value is None:
                self._value, self._key = self._load(version), key
            return self._value
