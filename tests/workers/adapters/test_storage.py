"""Adapter files: safetensors round trip; corrupt, foreign, pickled or escaping adapters refused."""

from __future__ import annotations

import pytest
import torch

from tests.workers.adapters.helpers import tiny_llama, with_random_adapters
from workers.adapters.storage import (
    MANIFEST_FILE,
    WEIGHTS_FILE,
    AdapterRejected,
    AdapterStore,
    base_fingerprint,
)


@pytest.fixture
def store(tmp_path) -> AdapterStore:
    return AdapterStore(tmp_path / "adapters")


@pytest.fixture
def saved(store):
    model = with_random_adapters({"user": 4})
    fingerprint = base_fingerprint(model.get_base_model())
    folder = store.save(model, "user", store.folder("u1", "v1"), fingerprint, rank=4)
    return model, folder, fingerprint


def test_round_trip_gives_the_same_outputs(store, saved):
    model, folder, fingerprint = saved
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json", WEIGHTS_FILE, MANIFEST_FILE,
    ]  # fmt: skip
    assert store.verify(folder, fingerprint)["rank"] == 4
    loaded = store.load(tiny_llama(), folder, "again", fingerprint)
    loaded.set_adapter("again")
    tokens = torch.arange(10).unsqueeze(0)
    with torch.no_grad():
        assert torch.allclose(loaded(tokens).logits, model(tokens).logits, atol=1e-5)


def test_fingerprint_tells_base_models_apart():
    assert base_fingerprint(tiny_llama(seed=0)) == base_fingerprint(tiny_llama(seed=0))
    assert base_fingerprint(tiny_llama(seed=0)) != base_fingerprint(tiny_llama(seed=1))


def test_adapter_for_another_base_model_is_refused(store, saved):
    _, folder, _ = saved
    other = base_fingerprint(tiny_llama(seed=1))
    with pytest.raises(AdapterRejected, match="another base model"):
        store.load(tiny_llama(seed=1), folder, "x", other)


def test_corrupt_weights_are_refused(store, saved):
    _, folder, fingerprint = saved
    data = bytearray((folder / WEIGHTS_FILE).read_bytes())
    data[-5] ^= 0xFF
    (folder / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(AdapterRejected, match="corrupt"):
        store.verify(folder, fingerprint)


def test_truncated_file_with_matching_checksum_is_refused(store, saved):
    import json

    from workers.adapters.storage import file_sha256

    _, folder, fingerprint = saved
    (folder / WEIGHTS_FILE).write_bytes(b"not a safetensors file")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["weights_sha256"] = file_sha256(folder / WEIGHTS_FILE)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(AdapterRejected, match="not valid safetensors"):
        store.verify(folder, fingerprint)


def test_pickle_files_are_refused_never_loaded(store, saved):
    _, folder, fingerprint = saved
    (folder / "adapter_model.bin").write_bytes(b"\x80\x04evil pickle")
    with pytest.raises(AdapterRejected, match="pickle"):
        store.load(tiny_llama(), folder, "x", fingerprint)


@pytest.mark.parametrize("segment", ["..", "../etc", "a/b", "", "/abs"])
def test_paths_cannot_leave_the_store(store, segment):
    with pytest.raises(AdapterRejected):
        store.folder("users", segment)


def test_inside_refuses_escapes(store, tmp_path):
    with pytest.raises(AdapterRejected, match="outside"):
        store.inside(tmp_path / "elsewhere")
    with pytest.raises(AdapterRejected, match="outside"):
        store.inside("../../etc/passwd")
