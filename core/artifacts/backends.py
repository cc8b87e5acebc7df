"""Where artifacts are kept: a folder (one machine, or a shared file system) or an S3-compatible
bucket (AWS S3, MinIO). Both hold the same layout::

    blobs/<sha[:2]>/<sha>     a file's bytes, keyed by their SHA-256
    trees/<sha>.json          an artifact's manifest, keyed by the SHA-256 of its bytes

A backend stores and returns bytes under those keys; checking them is the store's work. boto3 is
imported only when an S3 backend is opened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from core.errors import ArtifactError

S3_ENDPOINT_ENV = "ATTUNE_S3_ENDPOINT_URL"


def blob_key(sha: str) -> str:
    return f"blobs/{sha[:2]}/{sha}"


def tree_key(sha: str) -> str:
    return f"trees/{sha}.json"


class Backend(Protocol):
    """Bytes under keys; ``put_*`` overwrite (the store writes a key only when it is missing)."""

    def has(self, key: str) -> bool: ...

    def put_file(self, key: str, source: Path) -> None: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_file(self, key: str, dest: Path) -> None:
        """Write the key's bytes to ``dest``; ArtifactError when the key is missing."""
        ...

    def get_bytes(self, key: str) -> bytes | None:
        """The key's bytes, or None when it is missing."""
        ...


class LocalBackend:
    """A folder; every file is written to a temporary name and renamed (readers never see half a
    file), then made read-only."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBackend({str(self.root)!r})"

    def has(self, key: str) -> bool:
        return (self.root / key).is_file()

    def put_file(self, key: str, source: Path) -> None:
        def copy(f: BinaryIO) -> None:
            with Path(source).open("rb") as src:
                shutil.copyfileobj(src, f, 1024 * 1024)

        self._write(key, copy)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key, lambda f: f.write(data))

    def get_file(self, key: str, dest: Path) -> None:
        try:
            shutil.copyfile(self.root / key, dest)
        except FileNotFoundError as e:
            raise ArtifactError(f"{key} is missing from the artifact store {self.root}.") from e

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def _write(self, key: str, write: Callable[[BinaryIO], object]) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


class S3Backend:
    """A bucket (and an optional key prefix) of an S3-compatible service through boto3: the
    endpoint from ``$ATTUNE_S3_ENDPOINT_URL`` when set (MinIO, a test server), credentials and
    region from the standard AWS variables. The bucket must exist."""

    def __init__(self, bucket: str, prefix: str = "") -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = os.environ.get(S3_ENDPOINT_ENV) or None
        self._clients: dict[int, Any] = {}  # one client per process (a fork gets its own)
        self._lock = threading.Lock()
        self._call(
            lambda c: c.head_bucket(Bucket=bucket),
            missing=f"The S3 bucket {bucket!r} does not exist{self._where()}.",
        )

    def __repr__(self) -> str:
        return f"S3Backend('s3://{self.bucket}/{self.prefix}'{self._where()})"

    def has(self, key: str) -> bool:
        try:
            self._call(lambda c: c.head_object(Bucket=self.bucket, Key=self._key(key)), missing="")
        except _Missing:
            return False
        return True

    def put_file(self, key: str, source: Path) -> None:
        self._call(lambda c: c.upload_file(str(source), self.bucket, self._key(key)))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call(lambda c: c.put_object(Bucket=self.bucket, Key=self._key(key), Body=data))

    def get_file(self, key: str, dest: Path) -> None:
        try:
            self._call(lambda c: c.download_file(self.bucket, self._key(key), str(dest)), "")
        except _Missing as e:
            raise ArtifactError(f"{key} is missing from the artifact store {self!r}.") from e

    def get_bytes(self, key: str) -> bytes | None:
        try:
            answer = self._call(lambda c: c.get_object(Bucket=self.bucket, Key=self._key(key)), "")
            return answer["Body"].read()
        except _Missing:
            return None

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self) -> str:
        return f" at {self.endpoint_url}" if self.endpoint_url else ""

    def _client(self) -> Any:
        with self._lock:
            client = self._clients.get(os.getpid())
            if client is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    connect_timeout=10,
                    retries={"max_attempts": 3, "mode": "standard"},
                    # S3-compatible services: path-style URLs, checksums only where S3 needs them
                    s3={"addressing_style": "path"} if self.endpoint_url else None,
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                session = boto3.session.Session()
                client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
                self._clients = {os.getpid(): client}
            return client

    def _call(self, action: Any, missing: str | None = None) -> Any:
        """Run ``action(client)``; a missing key or bucket raises ``_Missing(missing)`` when
        ``missing`` is given, every other failure an ArtifactError."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return action(self._client())
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if missing is not None and (status == 404 or code in _MISSING_CODES):
                if missing:
                    raise ArtifactError(missing) from e
                raise _Missing(code) from e
            raise ArtifactError(f"The artifact store {self!r} refused: {e}") from e
        except BotoCoreError as e:
            raise ArtifactError(f"The artifact store {self!r} is not reachable: {e}") from e


_MISSING_CODES = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


class _Missing(Exception):
    """A key (or bucket) that is not there, inside the S3 backend."""
