"""The artifact store: content-addressed folders in a local folder or an S3 bucket (a real S3 API,
moto's server), read through a bounded node-local cache. Both backends pass the same tests."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.artifacts import REFUSED_SUFFIXES, ArtifactStore, open_store
from core.artifacts.backends import LocalBackend, S3Backend, blob_key, tree_key
from core.errors import ArtifactError
from tests.support.processes import ROOT, project_env
from tests.support.s3 import s3_client

NESTED = {
    "adapter_config.json": b'{"r": 8}',
    "adapter_model.safetensors": os.urandom(3000),
    "tokenizer/vocab.txt": b"a\nb\nc\n",
    "tokenizer/deeper/empty": b"",
    "notes/README.md": "η weights — ünïcode".encode(),
}


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["local", "s3"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "store")
    return f"s3://{request.getfixturevalue('s3_bucket')}/attune"


@pytest.fixture
def store(location: str, tmp_path: Path) -> ArtifactStore:
    return open_store(location, tmp_path / "cache", 1 << 30)


@pytest.fixture
def writes(store: ArtifactStore, monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts what the store sends to its backend, per method."""
    counts: Counter = Counter()
    for method in ("put_file", "put_bytes", "get_file"):
        real = getattr(store.backend, method)

        def counted(*args: object, _real=real, _method=method) -> object:
            counts[_method] += 1
            return _real(*args)

        monkeypatch.setattr(store.backend, method, counted)
    return counts


def test_a_nested_folder_round_trips(store: ArtifactStore, tmp_path: Path) -> None:
    ref = store.put(write_tree(tmp_path / "src", NESTED))
    assert ref.startswith("sha256:") and len(ref) == 71
    assert store.exists(ref)

    folder = store.fetch(ref)
    assert folder == store.cache_dir() / ref.removeprefix("sha256:")
    assert read_tree(folder) == NESTED
    for path in [folder, *folder.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0, path  # read-only
    assert store.fetch(ref) == folder  # a hit


def test_the_same_content_gives_the_same_ref_and_uploads_nothing_new(
    store: ArtifactStore, writes: Counter, tmp_path: Path
) -> None:
    ref = store.put(write_tree(tmp_path / "a", NESTED))
    assert writes == {"put_file": len(NESTED), "put_bytes": 1}

    writes.clear()
    assert store.put(write_tree(tmp_path / "b", NESTED)) == ref  # a copy elsewhere
    assert writes == {}

    writes.clear()  # one file more: only it and the new manifest are sent
    bigger = store.put(write_tree(tmp_path / "c", {**NESTED, "extra.txt": b"new"}))
    assert bigger != ref
    assert writes == {"put_file": 1, "put_bytes": 1}

    writes.clear()  # the same bytes under another name: another artifact, no new blob
    renamed = store.put(write_tree(tmp_path / "d", {"other-name": NESTED["adapter_config.json"]}))
    assert renamed not in (ref, bigger)
    assert writes == {"put_bytes": 1}


def test_a_name_points_at_the_first_ref_published_under_it(
    store: ArtifactStore, tmp_path: Path
) -> None:
    first = store.put(write_tree(tmp_path / "a", {"w.txt": b"first build"}))
    second = store.put(write_tree(tmp_path / "b", {"w.txt": b"second build"}))
    assert store.named("style-lm-v1") is None
    assert store.name("style-lm-v1", first) == first
    assert store.name("style-lm-v1", second) == first  # taken: the first one wins
    assert store.named("style-lm-v1") == first
    with pytest.raises(ArtifactError, match="unknown artifact"):
        store.name("other", "sha256:" + "0" * 64)
    for bad in ("../up", "A", "", "a/b"):
        with pytest.raises(ArtifactError, match="artifact name"):
            store.named(bad)


def test_a_ref_never_changes(location: str, store: ArtifactStore, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"weights.safetensors": b"version one"})
    first = store.put(source)
    (source / "weights.safetensors").write_bytes(b"version two")
    second = store.put(source)
    assert second != first

    elsewhere = open_store(location, tmp_path / "other-cache", 1 << 30)  # another node
    assert read_tree(elsewhere.fetch(first)) == {"weights.safetensors": b"version one"}
    assert read_tree(elsewhere.fetch(second)) == {"weights.safetensors": b"version two"}


def test_a_corrupt_blob_is_refused_and_nothing_is_cached(
    store: ArtifactStore, tmp_path: Path
) -> None:
    data = b"the real adapter weights"
    ref = store.put(write_tree(tmp_path / "src", {"w.safetensors": data}))
    corrupt = bytes([data[0] ^ 1]) + data[1:]  # same size, other bytes
    store.backend.put_bytes(blob_key(sha(data)), corrupt)

    with pytest.raises(ArtifactError, match="checksum"):
        store.fetch(ref)
    assert [p.name for p in store.cache_dir().iterdir()] == [".locks"]  # no folder, no leftovers


def test_a_manifest_that_does_not_match_its_ref_is_refused(
    store: ArtifactStore, tmp_path: Path
) -> None:
    ref = store.put(write_tree(tmp_path / "src", {"a.txt": b"a"}))
    digest = ref.removeprefix("sha256:")
    store.backend.put_bytes(tree_key(digest), b'{"files":[],"version":1}')
    with pytest.raises(ArtifactError, match="checksum"):
        store.fetch(ref)


@pytest.mark.parametrize(
    "ref", ["", "sha256:", "sha256:abc", "md5:" + "0" * 64, "sha256:" + "A" * 64, "../etc", None]
)
def test_a_malformed_ref_is_refused(store: ArtifactStore, ref: str) -> None:
    with pytest.raises(ArtifactError, match="Not an artifact ref"):
        store.fetch(ref)
    with pytest.raises(ArtifactError, match="Not an artifact ref"):
        store.exists(ref)


def test_an_unknown_ref_is_refused(store: ArtifactStore) -> None:
    ref = "sha256:" + "0" * 64
    assert not store.exists(ref)
    with pytest.raises(ArtifactError, match="Unknown artifact"):
        store.fetch(ref)


@pytest.mark.parametrize(
    "path", ["../escaped", "/tmp/escaped", "a/../../escaped", "a/./b", "a//b", "", "a\\..\\b"]
)
def test_a_manifest_path_outside_the_folder_is_refused(
    store: ArtifactStore, tmp_path: Path, path: str
) -> None:
    data = b"payload"
    store.backend.put_bytes(blob_key(sha(data)), data)
    entry = {"path": path, "sha256": sha(data), "size": len(data)}
    manifest = json.dumps({"files": [entry], "version": 1}).encode()
    store.backend.put_bytes(tree_key(sha(manifest)), manifest)  # a hand-made, hostile manifest

    with pytest.raises(ArtifactError, match="outside"):
        store.fetch("sha256:" + sha(manifest))
    assert not (store.cache_dir().parent / "escaped").exists()
    assert [p.name for p in store.cache_dir().iterdir()] == [".locks"]


def test_a_manifest_naming_a_path_twice_is_refused(store: ArtifactStore) -> None:
    data = b"x"
    store.backend.put_bytes(blob_key(sha(data)), data)
    entry = {"sha256": sha(data), "size": 1}
    for paths in (["a", "a"], ["a", "a/b"], ["a/b", "a"], ["d/a", "d/a/b"]):
        files = [{"path": path, **entry} for path in paths]
        manifest = json.dumps({"files": files, "version": 1}).encode()
        store.backend.put_bytes(tree_key(sha(manifest)), manifest)
        with pytest.raises(ArtifactError, match="twice"):
            store.fetch("sha256:" + sha(manifest))


@pytest.mark.parametrize("name", [*sorted(REFUSED_SUFFIXES), ".PT", ".Pickle"])
def test_pickle_ish_files_are_refused(
    store: ArtifactStore, writes: Counter, tmp_path: Path, name: str
) -> None:
    folder = write_tree(tmp_path / "src", {"ok.json": b"{}", f"sub/model{name}": b"\x80\x04"})
    with pytest.raises(ArtifactError, match="Pickle"):
        store.put(folder)
    assert writes == {}


@pytest.mark.parametrize("target", ["file", "folder"])
def test_symlinks_are_refused(
    store: ArtifactStore, writes: Counter, tmp_path: Path, target: str
) -> None:
    outside = write_tree(tmp_path / "outside", {"secret.txt": b"s"})
    folder = write_tree(tmp_path / "src", {"ok.json": b"{}"})
    (folder / "link").symlink_to(outside / "secret.txt" if target == "file" else outside)
    with pytest.raises(ArtifactError, match="Symbolic link"):
        store.put(folder)
    assert writes == {}


def test_put_needs_a_folder(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="Not a folder"):
        store.put(tmp_path / "missing")


def test_the_cache_stays_within_its_bound_least_recently_used_first(
    location: str, store: ArtifactStore, tmp_path: Path
) -> None:
    sizes = {"a": 1000, "b": 1000, "c": 1000, "huge": 5000}
    refs = {
        name: store.put(write_tree(tmp_path / name, {"w.safetensors": os.urandom(size)}))
        for name, size in sizes.items()
    }
    cache = open_store(location, tmp_path / "bounded", 2500)

    def cached() -> set[str]:
        names = {p.name for p in cache.cache_dir().iterdir() if not p.name.startswith(".")}
        return {name for name, ref in refs.items() if ref.removeprefix("sha256:") in names}

    cache.fetch(refs["a"])
    cache.fetch(refs["b"])
    assert cached() == {"a", "b"}
    cache.fetch(refs["c"])  # 3000 bytes > 2500: the least recently used (a) goes
    assert cached() == {"b", "c"}
    cache.fetch(refs["b"])  # b is used again, so c is now the oldest
    cache.fetch(refs["a"])
    assert cached() == {"a", "b"}
    assert read_tree(cache.fetch(refs["a"])) == read_tree(tmp_path / "a")

    cache.fetch(refs["huge"])  # larger than the bound: everything else goes, it stays
    assert cached() == {"huge"}


def test_concurrent_fetches_of_one_ref_from_threads_download_it_once(
    store: ArtifactStore, writes: Counter, tmp_path: Path
) -> None:
    ref = store.put(write_tree(tmp_path / "src", NESTED))
    start = threading.Barrier(8)

    def fetch(_: int) -> Path:
        start.wait()
        return store.fetch(ref)

    with ThreadPoolExecutor(8) as pool:
        folders = set(pool.map(fetch, range(8)))
    assert len(folders) == 1
    assert read_tree(folders.pop()) == NESTED
    assert writes["get_file"] == len(NESTED)
    assert sorted(p.name for p in store.cache_dir().iterdir()) == [
        ".locks",
        ref.removeprefix("sha256:"),
    ]


def test_concurrent_fetches_of_one_ref_from_processes(
    location: str, store: ArtifactStore, tmp_path: Path
) -> None:
    ref = store.put(write_tree(tmp_path / "src", NESTED))
    script = (
        "import sys; from pathlib import Path; from core.artifacts import open_store\n"
        "store = open_store(sys.argv[1], Path(sys.argv[2]), 1 << 30)\n"
        "print(store.fetch(sys.argv[3]))\n"
    )
    command = [sys.executable, "-c", script, location, str(tmp_path / "shared-cache"), ref]
    procs = [
        subprocess.Popen(command, cwd=ROOT, env=project_env(), stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = {proc.communicate(timeout=120)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert len(outputs) == 1
    folder = Path(outputs.pop())
    assert read_tree(folder) == NESTED
    assert sorted(p.name for p in folder.parent.iterdir()) == [".locks", folder.name]


def test_the_local_layout(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 'store'}", tmp_path / "cache", 1 << 30)
    assert isinstance(store.backend, LocalBackend)
    ref = store.put(write_tree(tmp_path / "src", {"b.txt": b"bee", "a/z.txt": b"zed"}))
    root, digest = tmp_path / "store", ref.removeprefix("sha256:")

    manifest = (root / "trees" / f"{digest}.json").read_bytes()
    assert sha(manifest) == digest
    assert json.loads(manifest) == {
        "files": [
            {"path": "a/z.txt", "sha256": sha(b"zed"), "size": 3},
            {"path": "b.txt", "sha256": sha(b"bee"), "size": 3},
        ],
        "version": 1,
    }
    assert (root / "blobs" / sha(b"bee")[:2] / sha(b"bee")).read_bytes() == b"bee"
    stored = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert stored == sorted(
        [f"trees/{digest}.json", *(f"blobs/{sha(d)[:2]}/{sha(d)}" for d in (b"bee", b"zed"))]
    )  # no temporary files left


def test_the_s3_layout(s3_bucket: str, s3_endpoint: str, tmp_path: Path) -> None:
    store = open_store(f"s3://{s3_bucket}/some/prefix/", tmp_path / "cache", 1 << 30)
    assert isinstance(store.backend, S3Backend)
    ref = store.put(write_tree(tmp_path / "src", {"b.txt": b"bee"}))
    listed = s3_client(s3_endpoint).list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        f"some/prefix/blobs/{sha(b'bee')[:2]}/{sha(b'bee')}",
        f"some/prefix/trees/{ref.removeprefix('sha256:')}.json",
    ]


def test_a_missing_bucket_is_a_clear_error(s3_bucket: str, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="bucket 'no-such-bucket' does not exist"):
        open_store("s3://no-such-bucket", tmp_path / "cache", 1 << 30)


def test_an_unreachable_endpoint_is_a_clear_error(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ATTUNE_S3_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(ArtifactError, match="not reachable"):
        open_store(f"s3://{s3_bucket}", tmp_path / "cache", 1 << 30)


@pytest.mark.parametrize("location", ["ftp://host/x", "s3://", "file://otherhost/x", ""])
def test_an_unknown_location_is_refused(location: str, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        open_store(location, tmp_path / "cache", 1 << 30)


def test_a_local_store_does_not_load_boto3(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from core.artifacts import open_store\n"
        f"store = open_store({str(tmp_path / 'store')!r}, Path({str(tmp_path / 'c')!r}), 1)\n"
        f"store.fetch(store.put(Path({str(tmp_path)!r}) / 'src'))\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules\n"
    )
    write_tree(tmp_path / "src", {"x": b"x"})
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=project_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_a_folder_named_by_an_old_relative_path_is_adopted(tmp_path: Path) -> None:
    from core.artifacts import adopt

    store = open_store(str(tmp_path / "store"), tmp_path / "cache", 1 << 30)
    root = tmp_path / "adapters"
    write_tree(root / "users" / "1" / "job-3", {"adapter_model.safetensors": b"weights"})
    ref = adopt(store, root, "users/1/job-3")
    assert ref.startswith("sha256:")
    assert read_tree(store.fetch(ref)) == {"adapter_model.safetensors": b"weights"}
    assert adopt(store, root, ref) == ref  # a ref stays as it is
    for untouched in ("", "../outside", "users/9/missing"):
        assert adopt(store, root, untouched) == untouched  # a reader then refuses it
