"""Adapters in the artifact store: safetensors round trip by ref; corrupt, foreign, pickled
adapters and refs that are not the store's refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.workers.adapters.helpers import adapter_store, tiny_llama, with_random_adapters
from workers.adapters.storage import (
    MANIFEST_FILE,
    WEIGHTS_FILE,
    AdapterRejected,
    AdapterStore,
    base_fingerprint,
    check_folder,
    file_sha256,
)


@pytest.fixture
def store(tmp_path) -> AdapterStore:
    return adapter_store(tmp_path)


@pytest.fixture
def saved(store):
    model = with_random_adapters({"user": 4})
    fingerprint = base_fingerprint(model.get_base_model())
    ref = store.save(model, "user", fingerprint, rank=4)
    return model, ref, fingerprint


def writable_copy(store: AdapterStore, ref: str, tmp_path: Path) -> Path:
    """A copy of a fetched adapter to tamper with (the cache itself is read-only)."""
    copy = tmp_path / "copy"
    shutil.copytree(store.folder(ref), copy)
    for path in [copy, *copy.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return copy


def test_round_trip_by_ref_gives_the_same_outputs(store, saved):
    model, ref, fingerprint = saved
    assert ref.startswith("sha256:")
    assert sorted(p.name for p in store.folder(ref).iterdir()) == [
        "adapter_config.json", WEIGHTS_FILE, MANIFEST_FILE,
    ]  # fmt: skip
    assert store.verify(ref, fingerprint)["rank"] == 4
    loaded = store.load(tiny_llama(), ref, "again", fingerprint)
    loaded.set_adapter("again")
    tokens = torch.arange(10).unsqueeze(0)
    with torch.no_grad():
        assert torch.allclose(loaded(tokens).logits, model(tokens).logits, atol=1e-5)
    assert not list(store.scratch.iterdir())  # written here, put in the store, gone from here


def test_the_same_adapter_saved_again_is_the_same_ref(store, saved):
    model, ref, fingerprint = saved
    assert store.save(model, "user", fingerprint, rank=4) == ref


def test_fingerprint_tells_base_models_apart():
    assert base_fingerprint(tiny_llama(seed=0)) == base_fingerprint(tiny_llama(seed=0))
    assert base_fingerprint(tiny_llama(seed=0)) != base_fingerprint(tiny_llama(seed=1))


def test_adapter_for_another_base_model_is_refused(store, saved):
    _, ref, _ = saved
    other = base_fingerprint(tiny_llama(seed=1))
    with pytest.raises(AdapterRejected, match="another base model"):
        store.load(tiny_llama(seed=1), ref, "x", other)


def test_altered_weights_are_refused(store, saved, tmp_path):
    _, ref, fingerprint = saved
    folder = writable_copy(store, ref, tmp_path)
    data = bytearray((folder / WEIGHTS_FILE).read_bytes())
    data[-5] ^= 0xFF
    (folder / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(AdapterRejected, match="corrupt"):
        check_folder(folder, fingerprint)


def test_a_corrupt_blob_in_the_store_never_reaches_a_node(store, saved, tmp_path):
    _, ref, fingerprint = saved
    blob = file_sha256(store.folder(ref) / WEIGHTS_FILE)
    stored = tmp_path / "artifacts" / "blobs" / blob[:2] / blob
    stored.chmod(0o644)
    stored.write_bytes(b"tampered in the store")
    fresh = AdapterStore(
        type(store.artifacts)(store.artifacts.backend, tmp_path / "other-cache", 1 << 30),
        tmp_path / "scratch",
    )
    with pytest.raises(AdapterRejected, match="adapter 'sha256:"):
        fresh.verify(ref, fingerprint)


def test_truncated_file_with_matching_checksum_is_refused(store, saved, tmp_path):
    _, ref, fingerprint = saved
    folder = writable_copy(store, ref, tmp_path)
    (folder / WEIGHTS_FILE).write_bytes(b"not a safetensors file")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["weights_sha256"] = file_sha256(folder / WEIGHTS_FILE)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(AdapterRejected, match="not valid safetensors"):
        check_folder(folder, fingerprint)


def test_pickle_files_are_refused_never_stored_or_loaded(store, saved, tmp_path):
    _, ref, fingerprint = saved
    folder = writable_copy(store, ref, tmp_path)
    (folder / "adapter_model.bin").write_bytes(b"\x80\x04evil pickle")
    with pytest.raises(AdapterRejected, match="pickle"):
        check_folder(folder, fingerprint)
    with pytest.raises(AdapterRejected):
        store.put(folder)


@pytest.mark.parametrize(
    "ref", ["..", "../etc", "users/1/v1", "", "/abs", "sha256:zz", "sha256:" + "0" * 64]
)
def test_only_refs_of_the_store_are_read(store, ref):
    with pytest.raises(AdapterRejected):
        store.folder(ref)
