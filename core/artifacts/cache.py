"""This node's read-through cache of fetched artifacts, bounded in bytes (pure Python, POSIX).

Layout under the cache folder::

    <sha>/                      a fetched artifact, read-only, published by an atomic rename
    .staging-<sha>-<random>/    one being downloaded (under its lock)
    .locks/<sha[:2]>.lock       flock stripes: one fill of a ref at a time, across threads and
                                processes; .locks/evict.lock: one eviction pass at a time

A folder's modification time is its last use (set on every fetch). After a fetch that downloaded
something, the least recently used folders go until the cache is within its bound, never the one
just fetched (a single artifact larger than the bound stays, alone). A folder another thread or
process is reading can go too when the bound is below what is in use at once: size it above that.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_PUBLISHED = re.compile(r"[0-9a-f]{64}")
_STAGING = re.compile(r"\.staging-([0-9a-f]{64})-.*")


class NodeCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root).resolve()
        self.max_bytes = max_bytes
        (self.root / ".locks").mkdir(parents=True, exist_ok=True)

    def get_or_fill(self, digest: str, fill: Callable[[Path], None]) -> Path:
        """The published folder of ``digest``; on a miss ``fill(staging folder)`` writes it first
        (an exception leaves nothing behind), then the cache is trimmed to its bound."""
        final = self.root / digest
        with self._lock(digest[:2]):
            if final.is_dir():
                _touch(final)
                return final
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=f".staging-{digest}-"))
            try:
                fill(staging)
                _make_read_only(staging)
                os.rename(staging, final)
            finally:
                if staging.exists():
                    _remove(staging)
            _touch(final)
        self.evict(keep=digest)
        return final

    def evict(self, keep: str | None = None) -> None:
        """Remove least recently used folders until the cache is within its bound, and what
        crashed processes left behind. A folder used while this runs is spared and the next
        oldest goes instead (a few passes at most)."""
        with self._lock("evict"):
            for _ in range(3):
                folders = self._scan()
                total = sum(size for _, _, size in folders)
                spared = False
                for used, name, size in sorted(folders):
                    if total <= self.max_bytes:
                        return
                    if name == keep:
                        continue
                    with self._lock(name[:2]):  # waits for a fetch of that stripe
                        if _used(self.root / name) != used:  # fetched since the scan
                            spared = True
                            continue
                        doomed = self.root / f".evicting-{name}-{os.getpid()}-{time.time_ns()}"
                        os.rename(self.root / name, doomed)  # gone at once for new readers
                    _remove(doomed)
                    total -= size
                if not spared:
                    return

    def _scan(self) -> list[tuple[int, str, int]]:
        """(last use, name, bytes) of every published folder; removes what was left behind."""
        folders = []
        for entry in os.scandir(self.root):
            if _PUBLISHED.fullmatch(entry.name):
                folders.append((entry.stat().st_mtime_ns, entry.name, _size(Path(entry.path))))
            elif self._left_behind(entry.name):
                _remove(Path(entry.path))
        return folders

    def _left_behind(self, name: str) -> bool:
        """An interrupted eviction, or a download no one is doing (its lock is free)."""
        if name.startswith(".evicting-"):
            return True
        if not (m := _STAGING.fullmatch(name)):
            return False
        with self._lock(m.group(1)[:2], wait=False) as free:
            return free

    @contextlib.contextmanager
    def _lock(self, name: str, wait: bool = True) -> Iterator[bool]:
        fd = os.open(self.root / ".locks" / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock


def _touch(folder: Path) -> None:
    now = time.time_ns()
    os.utime(folder, ns=(now, now))


def _used(folder: Path) -> int | None:
    try:
        return folder.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _size(folder: Path) -> int:
    return sum(
        os.lstat(os.path.join(dirpath, name)).st_size
        for dirpath, _, names in os.walk(folder)
        for name in names
    )


def _make_read_only(folder: Path) -> None:
    for dirpath, _, names in os.walk(folder, topdown=False):
        for name in names:
            os.chmod(os.path.join(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)


def _remove(folder: Path) -> None:
    for dirpath, _, _ in os.walk(folder):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(folder, ignore_errors=True)
