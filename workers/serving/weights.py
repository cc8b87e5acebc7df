"""Per-user weights for serving: an LRU cache of users' adapters bounded in bytes, and the
composition of a user's adapter with their η-weighted preference vectors.

The cache holds each user's adapter by version (a new version is a new key; the old one ages
out). Preference vectors (θ₊ and θ₋ of each active dimension) are shared by all users and loaded
once. A request's composition, user LoRA + Σ η·(θ₊ − θ₋), is a list of (LoRA, weight) read fresh
for every request, so a changed η applies at once; the engine applies it exactly (merged, or in a
mixed batch with the shared vectors read once for all rows), and ``compose`` turns it into one
LoRA where one is needed (the remote backend). An adapter that fails verification (outside the
store, pickle, altered, made for another base model) is left out with a warning, and the request
records that it was not used.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from core.serving import AdapterRef, Plan, VectorRef
from workers.adapters.storage import AdapterRejected, AdapterStore
from workers.serving.lora import Components, LoraWeights, check_fits, load_lora

log = logging.getLogger(__name__)


class LRUBytes:
    """A thread-safe LRU cache whose values have a size in bytes; evicts the least recently used
    entries to stay within ``capacity`` (an entry larger than the capacity is not kept)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._items: OrderedDict[str, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> object | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: str, value: object, size: int) -> None:
        with self._lock:
            if key in self._items:
                self.used -= self._items.pop(key)[1]
            if size > self.capacity:
                return
            self._items[key] = (value, size)
            self.used += size
            while self.used > self.capacity:
                _, (_, dropped) = self._items.popitem(last=False)
                self.used -= dropped
                self.evictions += 1

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items


@dataclass(frozen=True)
class Applied:
    """The weights a request runs with, and what they are made of (recorded on the
    Interaction)."""

    weights: Components | None
    adapter_label: str = ""
    etas: dict[str, float] = field(default_factory=dict)

    def composed(self) -> LoraWeights | None:
        """The weights as one LoRA (``cat`` composition), e.g. for a remote server."""
        return self.weights.composed() if self.weights is not None else None


class WeightsProvider:
    """Loads and caches users' LoRAs and the preference vectors for one base model, and gives
    each request its composition: user LoRA (weight 1) + Σ η·(θ₊ − θ₋)."""

    def __init__(
        self,
        store: AdapterStore,
        fingerprint: str | None,
        base_model: str,
        capacity_bytes: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        linears: dict[str, torch.nn.Linear] | None = None,
    ) -> None:
        self.store = store
        self.fingerprint = fingerprint  # None: trust each row's recorded fingerprint (remote)
        self.base_model = base_model
        self.cache = LRUBytes(capacity_bytes)
        self.device = device
        self.dtype = dtype
        self.linears = linears
        self._vectors: dict[tuple[str, int, str], LoraWeights] = {}
        self._lock = threading.Lock()

    def load(self, ref: str, recorded_fingerprint: str, base_model: str) -> LoraWeights:
        """Fetch, verify and read one adapter of the artifact store (no LRU here)."""
        if self.fingerprint is None and base_model != self.base_model:
            raise AdapterRejected(f"adapter was made for {base_model!r}, not {self.base_model!r}")
        lora = load_lora(self.store, ref, self.fingerprint or recorded_fingerprint)
        if self.linears is None:
            return lora.to(self.device, self.dtype)
        check_fits(lora, self.linears)
        lora = lora.to(self.device, self.dtype)
        lora.transposed  # noqa: B018 (the mixed batch's layout, made once per version, not per batch)
        return lora

    def user_lora(self, ref: AdapterRef) -> LoraWeights:
        """A user's adapter from the LRU cache, loaded (cold) on a miss."""
        key = f"{ref.label}:{ref.path}:{ref.fingerprint}"
        cached = self.cache.get(key)
        if isinstance(cached, LoraWeights):
            return cached
        lora = self.load(ref.path, ref.fingerprint, ref.base_model)
        # both layouts count: (A, B) for merging, (Aᵀ, Bᵀ) for mixed batches
        self.cache.put(key, lora, 2 * lora.nbytes)
        return lora

    def vector(self, ref: VectorRef, pole: str) -> LoraWeights:
        """One pole of a preference vector, loaded once and shared by every user."""
        key = (ref.name, ref.version, pole)
        with self._lock:
            if key not in self._vectors:
                path = ref.positive_path if pole == "positive" else ref.negative_path
                self._vectors[key] = self.load(path, ref.fingerprint, ref.base_model)
            return self._vectors[key]

    def weights(self, plan: Plan) -> Applied:
        """The composition for ``plan`` and what it holds (left out: what fails verification)."""
        if not plan.personalized:
            return Applied(None)
        parts: list[tuple[LoraWeights, float]] = []
        label, etas = "", {}
        if plan.adapter is not None:
            try:
                parts.append((self.user_lora(plan.adapter), 1.0))
                label = plan.adapter.label
            except (AdapterRejected, OSError) as err:
                log.warning(
                    "user %s: adapter %s not used: %s", plan.user_id, plan.adapter.label, err
                )
        for ref in plan.vectors:
            try:
                positive, negative = self.vector(ref, "positive"), self.vector(ref, "negative")
            except (AdapterRejected, OSError) as err:
                log.warning("preference vector %s not used: %s", ref.name, err)
                continue
            parts += [(positive, ref.eta), (negative, -ref.eta)]
            etas[ref.name] = ref.eta
        weights = Components(tuple(parts)) if parts else None
        return Applied(weights, label, etas)
