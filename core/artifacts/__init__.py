"""The one store of everything one process writes and another reads: adapter folders,
preference-vector poles, composed adapters for a remote vLLM, CoPL versions, built base models.

An artifact is a folder, stored content-addressed (:mod:`core.artifacts.manifest`): each file a
blob keyed by its SHA-256, the folder a manifest whose SHA-256 is the artifact's ref
``"sha256:<64 hex>"``. A ref is written once and never changes; putting the same content again
uploads nothing. Readers :meth:`ArtifactStore.fetch` a ref into this node's bounded read-through
cache (:mod:`core.artifacts.cache`), every file checked against the manifest on the way in.

Where the store lives (:func:`open_store`): a folder (``/path`` or ``file:///path``; the default,
one machine or a shared file system) or an S3-compatible bucket (``s3://bucket[/prefix]``).
Pure Python: no Django, no torch; boto3 only inside the S3 backend.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from core.artifacts.backends import Backend, LocalBackend, S3Backend, blob_key, tree_key
from core.artifacts.cache import NodeCache
from core.artifacts.manifest import (
    REF_PREFIX,
    REFUSED_SUFFIXES,
    digest_of_ref,
    manifest_bytes,
    parse_manifest,
    scan_folder,
    sha256_file,
)
from core.errors import ArtifactError

__all__ = ["REFUSED_SUFFIXES", "REF_PREFIX", "ArtifactError", "ArtifactStore", "open_store"]


class ArtifactStore:
    """Content-addressed folders in a backend, read through this node's cache; thread-safe."""

    def __init__(self, backend: Backend, cache_dir: Path, cache_bytes: int) -> None:
        if cache_bytes < 0:
            raise ArtifactError(f"The artifact cache bound must be ≥ 0 bytes, not {cache_bytes}.")
        self.backend = backend
        self._cache = NodeCache(cache_dir, cache_bytes)

    def __repr__(self) -> str:
        return f"ArtifactStore({self.backend!r}, cache={str(self._cache.root)!r})"

    def put(self, folder: Path) -> str:
        """Store every regular file under ``folder`` and return the artifact's ref. Refuses
        symlinks and pickle-ish files (ArtifactError). Blobs the store has are not sent again, and
        the manifest goes last: a ref that exists has all its files."""
        files = scan_folder(Path(folder))
        data = manifest_bytes([entry for entry, _ in files])
        digest = hashlib.sha256(data).hexdigest()
        if not self.backend.has(tree_key(digest)):
            sent: set[str] = set()
            for entry, path in files:
                key = blob_key(entry.sha256)
                if entry.sha256 not in sent and not self.backend.has(key):
                    self.backend.put_file(key, path)
                sent.add(entry.sha256)
            self.backend.put_bytes(tree_key(digest), data)
        return REF_PREFIX + digest

    def fetch(self, ref: str) -> Path:
        """A local read-only folder with the artifact's files (downloaded and checked on a cache
        miss). ArtifactError for a malformed or unknown ref, a manifest path outside the folder,
        or a file whose size or checksum is not the manifest's."""
        digest = digest_of_ref(ref)
        return self._cache.get_or_fill(digest, lambda staging: self._download(digest, staging))

    def exists(self, ref: str) -> bool:
        return self.backend.has(tree_key(digest_of_ref(ref)))

    def name(self, name: str, ref: str) -> str:
        """Publish ``ref`` under ``name`` (``names/<name>``) unless the name is taken; returns the
        ref the name holds (the first one published wins: a versioned name never changes)."""
        if (taken := self.named(name)) is not None:
            return taken
        if not self.exists(ref):
            raise ArtifactError(f"Cannot name {name!r} after an unknown artifact {ref!r}.")
        self.backend.put_bytes(_name_key(name), ref.encode())
        return ref

    def named(self, name: str) -> str | None:
        """The ref published under ``name``, or None."""
        data = self.backend.get_bytes(_name_key(name))
        if data is None:
            return None
        ref = data.decode("ascii", "replace").strip()
        digest_of_ref(ref)  # a malformed pointer is refused, never followed
        return ref

    def cache_dir(self) -> Path:
        """This node's cache folder (``<cache_dir>/<64 hex>`` is a fetched ref's folder)."""
        return self._cache.root

    def _download(self, digest: str, staging: Path) -> None:
        data = self.backend.get_bytes(tree_key(digest))
        if data is None:
            raise ArtifactError(f"Unknown artifact {REF_PREFIX}{digest} in {self.backend!r}.")
        for entry in parse_manifest(data, digest):
            dest = staging / entry.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.backend.get_file(blob_key(entry.sha256), dest)
            if dest.stat().st_size != entry.size or sha256_file(dest) != entry.sha256:
                raise ArtifactError(
                    f"{entry.path} of {REF_PREFIX}{digest} does not match its checksum in "
                    f"{self.backend!r}: the stored blob is corrupt."
                )


def adopt(store: ArtifactStore, root: Path, path: str) -> str:
    """The ref for a row that still names a folder by a path under ``root`` (how artifacts were
    kept before the store): the folder is put in the store. A ref, an empty path, or a path
    that leaves ``root`` or names no folder is returned as it is (a reader then refuses it)."""
    if not path or path.startswith(REF_PREFIX):
        return path
    base = Path(root).resolve()
    folder = (base / path).resolve()
    if not folder.is_relative_to(base) or not folder.is_dir():
        return path
    return store.put(folder)


_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def _name_key(name: str) -> str:
    if not _NAME.match(name):
        raise ArtifactError(f"An artifact name is lower-case letters, digits, . _ -: {name!r}.")
    return f"names/{name}"


def open_store(location: str, cache_dir: Path, cache_bytes: int) -> ArtifactStore:
    """The store at ``location``: a folder path or ``file:///path`` (a local folder), or
    ``s3://bucket[/prefix]`` (an S3-compatible bucket, endpoint from ``$ATTUNE_S3_ENDPOINT_URL``
    when set, credentials and region from the standard AWS variables)."""
    parts = urlsplit(location)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ArtifactError(f"An S3 artifact store needs a bucket: {location!r}.")
        backend: Backend = S3Backend(parts.netloc, parts.path)
    elif parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ArtifactError(f"A file:// artifact store needs a local path: {location!r}.")
        backend = LocalBackend(Path(url2pathname(parts.path)))
    elif "://" in location:
        raise ArtifactError(f"Unknown artifact store {location!r} (a path, file:// or s3://).")
    elif not location:
        raise ArtifactError("The artifact store location is empty.")
    else:
        backend = LocalBackend(Path(location))
    return ArtifactStore(backend, cache_dir, cache_bytes)
