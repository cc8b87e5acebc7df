"""Refs and manifests of the artifact store (pure Python).

An artifact is a folder of regular files. Each file is a blob keyed by the SHA-256 of its bytes;
the folder is a manifest, canonical JSON listing every file's relative POSIX path, SHA-256 and size,
sorted by path; the artifact's ref is ``"sha256:" + SHA-256(manifest bytes)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.errors import ArtifactError

REF_PREFIX = "sha256:"
MANIFEST_VERSION = 1
REFUSED_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})
"""Suffixes of files that may hold pickles, which run code when loaded: never stored."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One file of an artifact: where it lies in the folder, its SHA-256 and its size."""

    path: str
    sha256: str
    size: int


def digest_of_ref(ref: str) -> str:
    """The 64 hex digits of a well-formed ref (``sha256:<64 lowercase hex>``)."""
    if not isinstance(ref, str) or not ref.startswith(REF_PREFIX):
        raise ArtifactError(f"Not an artifact ref (sha256:<64 hex>): {ref!r}.")
    digest = ref[len(REF_PREFIX) :]
    if not _HEX64.fullmatch(digest):
        raise ArtifactError(f"Not an artifact ref (sha256:<64 hex>): {ref!r}.")
    return digest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def scan_folder(folder: Path) -> list[tuple[Entry, Path]]:
    """Every regular file under ``folder`` with its entry, sorted by path; refuses symlinks,
    other non-regular files and pickle-ish suffixes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"Not a folder: {folder}.")
    found: list[tuple[Entry, Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                raise ArtifactError(f"Symbolic links are not stored: {relative}.")
            if name in dirnames:
                continue
            if not path.is_file():
                raise ArtifactError(f"Only regular files are stored: {relative}.")
            if path.suffix.lower() in REFUSED_SUFFIXES:
                raise ArtifactError(f"Pickle-ish files are not stored (safetensors): {relative}.")
            found.append((Entry(relative, sha256_file(path), path.stat().st_size), path))
    return sorted(found, key=lambda item: item[0].path)


def manifest_bytes(entries: list[Entry]) -> bytes:
    """The canonical manifest of ``entries`` (sorted by path, compact, sorted keys, UTF-8)."""
    files = [
        {"path": e.path, "sha256": e.sha256, "size": e.size}
        for e in sorted(entries, key=lambda e: e.path)
    ]
    document = {"files": files, "version": MANIFEST_VERSION}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_manifest(data: bytes, digest: str) -> list[Entry]:
    """The entries of a manifest read back from a store, checked: its SHA-256 is ``digest``, every
    path stays inside the folder, no path is listed twice or is also a folder of another."""
    if hashlib.sha256(data).hexdigest() != digest:
        raise ArtifactError(f"The manifest of sha256:{digest} does not match its checksum.")
    try:
        document = json.loads(data)
        if document.get("version") != MANIFEST_VERSION:
            raise ValueError(f"unknown manifest version {document.get('version')!r}")
        entries = [Entry(f["path"], f["sha256"], f["size"]) for f in document["files"]]
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ArtifactError(f"The manifest of sha256:{digest} is malformed: {e}.") from e
    files: set[str] = set()
    folders: set[str] = set()
    for entry in entries:
        _check_entry(entry, digest)
        parents = {p.as_posix() for p in PurePosixPath(entry.path).parents} - {"."}
        if entry.path in files or entry.path in folders or parents & files:
            raise ArtifactError(f"The manifest of sha256:{digest} lists {entry.path!r} twice.")
        files.add(entry.path)
        folders |= parents
    return entries


def _check_entry(entry: Entry, digest: str) -> None:
    path = entry.path
    parts = PurePosixPath(path).parts if isinstance(path, str) else ()
    if (
        not parts
        or "\\" in path
        or "\x00" in path
        or PurePosixPath(path).is_absolute()
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise ArtifactError(f"The manifest of sha256:{digest} names a path outside it: {path!r}.")
    if not isinstance(entry.sha256, str) or not _HEX64.fullmatch(entry.sha256):
        raise ArtifactError(f"The manifest of sha256:{digest} has a bad checksum for {path!r}.")
    if type(entry.size) is not int or entry.size < 0:
        raise ArtifactError(f"The manifest of sha256:{digest} has a bad size for {path!r}.")
