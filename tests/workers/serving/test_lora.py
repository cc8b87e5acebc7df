"""Serving's LoRA tensors: exact against PEFT's own composition, merged and stacked alike."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel

from tests.workers.adapters.helpers import adapter_store, tiny_llama, with_random_adapters
from workers.adapters.compose import Component, compose, preference_vector
from workers.adapters.storage import AdapterRejected, AdapterStore, base_fingerprint
from workers.serving import lora as serving_lora
from workers.serving.runtime import LoraRuntime
from workers.serving.weights import LRUBytes

ETA = 0.7


@pytest.fixture
def tokens() -> torch.Tensor:
    return torch.randint(0, 97, (2, 12), generator=torch.Generator().manual_seed(3))


@pytest.fixture
def stored(tmp_path: Path):
    """Three PEFT adapters (user LoRA, θ₊, θ₋) saved in an adapter store, and the PEFT model."""
    model = with_random_adapters({"user": 4, "pos": 2, "neg": 2})
    store = adapter_store(tmp_path)
    fingerprint = base_fingerprint(tiny_llama())
    folders = {name: store.save(model, name, fingerprint) for name in ("user", "pos", "neg")}
    return model, store, fingerprint, folders


def peft_logits(model: PeftModel, tokens: torch.Tensor) -> torch.Tensor:
    preference_vector(model, "pos", "neg", "phi")
    name = compose(model, [Component("user", 1.0), Component("phi", ETA)], "composed")
    model.set_adapter(name)
    with torch.no_grad():
        return model(tokens).logits


def composed(store: AdapterStore, fingerprint: str, folders: dict) -> serving_lora.LoraWeights:
    loaded = {k: serving_lora.load_lora(store, v, fingerprint) for k, v in folders.items()}
    result = serving_lora.compose(
        [(loaded["user"], 1.0), (loaded["pos"], ETA), (loaded["neg"], -ETA)]
    )
    assert result is not None
    return result


def test_composition_matches_peft_cat_merged_and_stacked(stored, tokens):
    model, store, fingerprint, folders = stored
    expected = peft_logits(model, tokens)
    weights = composed(store, fingerprint, folders)
    assert weights.rank == 4 + 2 + 2

    plain = tiny_llama()
    runtime = LoraRuntime(plain)
    with torch.no_grad():
        base = plain(tokens).logits
        with runtime.applied([weights, weights]) as mode:
            merged = plain(tokens).logits
        assert mode == "merged"
        with runtime.applied([weights, None]) as mode:
            stacked = plain(tokens).logits
        assert mode == "stacked"
        after = plain(tokens).logits
    assert (merged - expected).abs().max() < 1e-4
    assert (stacked[0] - expected[0]).abs().max() < 1e-4  # row 0 with the user's weights
    assert (stacked[1] - base[1]).abs().max() < 1e-5  # row 1 is the base model
    assert (merged - base).abs().max() > 1e-2  # the weights really change the model
    assert torch.equal(after, base)  # the base weights are restored exactly


def test_zero_eta_drops_the_vector_and_nothing_is_the_base(stored):
    _, store, fingerprint, folders = stored
    user = serving_lora.load_lora(store, folders["user"], fingerprint)
    pos = serving_lora.load_lora(store, folders["pos"], fingerprint)
    assert serving_lora.compose([(user, 1.0), (pos, 0.0)]) is user
    assert serving_lora.compose([(pos, 0.0)]) is None


def test_written_peft_folder_loads_in_peft_with_the_same_logits(stored, tokens, tmp_path):
    model, store, fingerprint, folders = stored
    expected = peft_logits(model, tokens)
    folder = serving_lora.write_peft(
        composed(store, fingerprint, folders), tmp_path / "out", fingerprint, "tiny"
    )
    store.verify(store.put(folder), fingerprint)  # a valid Attune adapter (manifest, checksum)
    reloaded = PeftModel.from_pretrained(tiny_llama(), str(folder)).eval()
    with torch.no_grad():
        assert (reloaded(tokens).logits - expected).abs().max() < 1e-4


def test_altered_or_foreign_adapters_are_refused(stored):
    _, store, fingerprint, folders = stored
    with pytest.raises(AdapterRejected, match="another base model"):
        serving_lora.load_lora(store, folders["user"], "0" * 16)
    with pytest.raises(AdapterRejected, match="Not an artifact ref"):
        serving_lora.load_lora(store, "../elsewhere", fingerprint)


def test_adapter_for_other_shapes_is_refused(stored):
    _, store, fingerprint, folders = stored
    user = serving_lora.load_lora(store, folders["user"], fingerprint)
    wider = LoraRuntime(tiny_llama(hidden=64))
    with pytest.raises(AdapterRejected, match="shape"):
        serving_lora.check_fits(user, wider.linears)


def test_lru_cache_is_bounded_in_bytes():
    cache = LRUBytes(capacity=100)
    cache.put("a", "A", 40)
    cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # a is now the most recent
    cache.put("c", "C", 40)  # 120 > 100: evict the least recent (b)
    assert "b" not in cache and cache.get("a") == "A" and cache.get("c") == "C"
    assert cache.used == 80 and cache.evictions == 1
    cache.put("huge", "H", 500)  # larger than the cache: not kept, nothing evicted
    assert "huge" not in cache and len(cache) == 2


def test_mixed_batch_with_shared_vectors_matches_each_row_alone(stored):
    from workers.serving.lora import Components

    _, store, fingerprint, folders = stored
    user, pos, neg = (serving_lora.load_lora(store, folders[k], fingerprint)
                      for k in ("user", "pos", "neg"))  # fmt: skip
    rows = [
        Components(((user, 1.0), (pos, 0.7), (neg, -0.7))),  # a user with η = 0.7
        Components(((pos, -1.2), (neg, 1.2))),  # another user: no adapter, η = -1.2
        None,  # the base model
        Components(((user, 1.0),)),  # the first user's adapter without vectors
    ]
    tokens = torch.randint(0, 97, (len(rows), 10), generator=torch.Generator().manual_seed(5))
    plain = tiny_llama()
    runtime = LoraRuntime(plain)
    with torch.no_grad():
        with runtime.applied(rows) as mode:
            mixed = plain(tokens).logits
        assert mode == "stacked"
        for i, row in enumerate(rows):
            with runtime.applied([row]) as alone_mode:
                alone = plain(tokens[i : i + 1]).logits
            assert alone_mode == ("base" if row is None else "merged")
            assert (mixed[i] - alone[0]).abs().max() < 1e-4, i
    assert (mixed[0] - mixed[2]).abs().max() > 1e-2  # personalization changes the logits


def test_large_models_on_the_cpu_run_one_user_unmerged(stored, tokens):
    _, store, fingerprint, folders = stored
    weights = composed(store, fingerprint, folders)
    merged_runtime, plain = LoraRuntime(tiny_llama()), tiny_llama()
    unmerged_runtime = LoraRuntime(plain, merge_limit=0)
    with torch.no_grad():
        with merged_runtime.applied([weights, weights]) as mode:
            expected = merged_runtime.model(tokens).logits
        assert mode == "merged"
        with unmerged_runtime.applied([weights, weights]) as mode:
            unmerged = plain(tokens).logits
        assert mode == "stacked"
    assert (unmerged - expected).abs().max() < 1e-4


def test_mixed_batch_of_many_users_matches_each_user_alone(stored):
    """Eight rows: users with their own LoRAs of different ranks (one without some modules), the
    shared vectors with each user's own η, one user twice (n candidates), and a base row; each
    row of the gathered batch gives what that user's request gives alone (merged)."""
    from workers.serving.lora import Components, LoraWeights

    _, store, fingerprint, folders = stored
    pos, neg = (serving_lora.load_lora(store, folders[k], fingerprint) for k in ("pos", "neg"))
    plain = tiny_llama()
    runtime = LoraRuntime(plain)
    g = torch.Generator().manual_seed(11)

    def user(rank: int, skip: str = "") -> LoraWeights:
        return LoraWeights({
            name: (torch.randn(rank, layer.in_features, generator=g) * 0.2,
                   torch.randn(layer.out_features, rank, generator=g) * 0.2)
            for name, layer in runtime.linears.items() if not (skip and skip in name)
        })  # fmt: skip

    users = [user(4), user(8), user(2, skip="q_proj"), user(6), user(8)]
    rows = [Components(((u, 1.0), (pos, 0.3 * i - 0.6), (neg, 0.6 - 0.3 * i)))
            for i, u in enumerate(users)]  # fmt: skip
    rows += [rows[1], None, Components(((pos, 1.5), (neg, -1.5)))]  # n=2 for user 1; base
    tokens = torch.randint(0, 97, (len(rows), 9), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        with runtime.applied(rows) as mode:
            mixed = plain(tokens).logits
        assert mode == "stacked"
        base = plain(tokens).logits
        for i, row in enumerate(rows):
            with runtime.applied([row]):
                alone = plain(tokens[i : i + 1]).logits
            assert (mixed[i] - alone[0]).abs().max() < 1e-4, i
        assert torch.equal(plain(tokens).logits, base)  # every layer's forward is restored
    assert (mixed[6] - base[6]).abs().max() < 1e-5  # the base row is the base model
    assert min((mixed[i] - base[i]).abs().max() for i in range(5)) > 1e-2  # each user differs
