"""Apply LoRA weights to the shared base model for one batch: merged or stacked per row.

- **Uniform batch** (every row uses the same adapter, e.g. one user, or one user's ``n``
  candidates): the update ``B @ A`` is added to the base weights for the batch and the weights
  are restored from a pristine copy afterwards (exact; no per-token cost at all). On the CPU a
  model with more than ``CPU_MERGE_LIMIT`` adapted weights runs it like a mixed batch instead.
- **Mixed batch** (rows of different users, or users and base rows): each adapted layer adds
  ``bmm(bmm(x, Aᵀ), Bᵀ)`` with each row's own LoRA stacked (zero-padded to the largest rank; a
  base row has zeros), the batched-gather LoRA of Punica and S-LoRA, plus the LoRAs that several
  rows share (the preference vectors θ₊, θ₋) once for the whole batch, each row scaled by its own
  weight (η): ``((x Aᵀ) · w_row) Bᵀ``. A batch thus reads every user's LoRA and each vector
  once; its cost does not grow with the number of distinct adapters, unlike PEFT's
  ``adapter_names=`` mixed batches, which loop over the adapters in every layer (both measured in
  ``bench/generation.py``).

One batch at a time: the scheduler's single engine thread is the only caller.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from workers.serving.lora import Components, LoraWeights


def adaptable_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The model's linear layers by name, without the output head (as PEFT's ``all-linear``)."""
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and module is not output
    }


Rows = Sequence[Components | LoraWeights | None]
CPU_MERGE_LIMIT = 64 * 1024 * 1024  # adapted weight elements up to which the CPU merges


def as_components(row: Components | LoraWeights | None) -> Components | None:
    if row is None or isinstance(row, Components):
        return row if row is None or row.key else None
    return Components(((row, 1.0),))


class LoraRuntime:
    """Applies per-row LoRA weights to ``model`` around one forward pass or generate call."""

    def __init__(self, model: nn.Module, merge_limit: int | None = None) -> None:
        self.model = model
        self.linears = adaptable_linears(model)
        self._pristine: dict[str, torch.Tensor] = {}
        on_gpu = next(model.parameters()).device.type != "cpu"
        # Merging touches every adapted weight twice per batch (add, restore): cheap on a GPU and
        # for small models; a large model on the CPU runs a single user's batch unmerged instead.
        self.merge_limit = (
            merge_limit if merge_limit is not None else (2**62 if on_gpu else CPU_MERGE_LIMIT)
        )
        self.adapted_elements = sum(layer.weight.numel() for layer in self.linears.values())
        self._shared_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @contextmanager
    def applied(self, rows: Rows) -> Iterator[str]:
        """Within the block, row ``i`` of a batch runs with ``rows[i]`` (None: the base model).
        Yields the mode used: ``base``, ``merged`` or ``stacked``."""
        batch = [as_components(r) for r in rows]
        keys = {c.key if c is not None else None for c in batch}
        if keys == {None}:
            yield "base"
        elif len(keys) == 1 and self.adapted_elements <= self.merge_limit:
            assert batch[0] is not None
            with self._merged(batch[0]):
                yield "merged"
        else:
            with self._stacked(batch):
                yield "stacked"

    @contextmanager
    def _merged(self, components: Components) -> Iterator[None]:
        touched: set[str] = set()
        try:
            lora = components.composed()  # one B @ A per layer, one pass over its weight
            with torch.no_grad():
                for name, (a, b) in lora.modules.items() if lora is not None else ():
                    weight = self.linears[name].weight
                    if name not in self._pristine:
                        self._pristine[name] = weight.detach().clone()
                    touched.add(name)
                    weight.add_((b @ a).to(weight.dtype))
            yield
        finally:
            with torch.no_grad():
                for name in touched:
                    self.linears[name].weight.copy_(self._pristine[name])

    @contextmanager
    def _stacked(self, rows: Sequence[Components | None]) -> Iterator[None]:
        # Which rows use each LoRA, with what weight. A LoRA used by several rows (a preference
        # vector, or one user's n candidates) is applied once for the batch with a per-row weight;
        # the others (users' own LoRAs) are stacked per row.
        usage: dict[int, tuple[LoraWeights, dict[int, float]]] = {}
        for i, components in enumerate(rows):
            for lora, w in components.parts if components is not None else ():
                if w != 0.0:
                    weights = usage.setdefault(id(lora), (lora, {}))[1]
                    weights[i] = weights.get(i, 0.0) + w
        shared = [(lora, ws) for lora, ws in usage.values() if len(ws) > 1]
        own: list[list[tuple[LoraWeights, float]]] = [[] for _ in rows]
        for lora, ws in usage.values():
            if len(ws) == 1:
                (i, w), *_ = ws.items()
                own[i].append((lora, w))
        names = {name for lora, _ in usage.values() for name in lora.modules}
        patched = []
        scales: dict[tuple, torch.Tensor] = {}  # one per set of shared LoRAs, not per layer
        try:
            for name in names:
                layer = self.linears[name]
                per_row = _stack(name, own, layer) if any(own) else None
                common = self._shared(name, shared, len(rows), layer, scales)
                if per_row is None and common is None:
                    continue
                layer.forward = _lora_forward(layer, per_row, common)
                patched.append(layer)
            yield
        finally:
            for layer in patched:
                del layer.forward  # back to the class's forward

    def _shared(
        self,
        name: str,
        shared: list[tuple[LoraWeights, dict[int, float]]],
        batch: int,
        layer: nn.Linear,
        scales: dict[tuple, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """``(Aᵀ [in, R], Bᵀ [R, out], per-row weights [rows, 1, R])`` of the shared LoRAs."""
        present = [(lora, ws) for lora, ws in shared if name in lora.modules]
        if not present:
            return None
        key = (name, *(id(lora) for lora, _ in present))
        if key not in self._shared_cache:
            if len(self._shared_cache) > 256:
                self._shared_cache.clear()
            parts = [lora.transposed[name] for lora, _ in present]
            self._shared_cache[key] = (
                torch.cat([a for a, _ in parts], dim=1),
                torch.cat([b for _, b in parts], dim=0),
            )
        a_t, b_t = self._shared_cache[key]
        # each row's weight on each shared LoRA, repeated over its rank: one tensor, not a
        # Python loop of slice writes per row, LoRA and layer (the setup of a mixed batch), and
        # built once for every layer with the same shared LoRAs of the same ranks
        ranks = tuple(lora.modules[name][0].shape[0] for lora, _ in present)
        scale_key = (key[1:], ranks, a_t.device, a_t.dtype)
        if scale_key not in scales:
            table = torch.tensor([[ws.get(i, 0.0) for _, ws in present] for i in range(batch)])
            scale = table.repeat_interleave(torch.tensor(ranks), dim=1).unsqueeze(1)
            scales[scale_key] = scale.to(a_t.device, a_t.dtype)
        return a_t, b_t, scales[scale_key]


def _lora_forward(
    layer: nn.Linear,
    per_row: tuple[torch.Tensor, torch.Tensor] | None,
    common: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
):
    """The layer's forward plus each row's own ``x Aᵀ Bᵀ`` (two batched products) and the shared
    LoRAs' ``((x Aᵀ) · w_row) Bᵀ`` (two plain products for the whole batch)."""
    weight, bias = layer.weight, layer.bias

    def forward(x: torch.Tensor) -> torch.Tensor:
        out = nn.functional.linear(x, weight, bias)
        if per_row is not None:
            out = torch.baddbmm(out, torch.bmm(x, per_row[0]), per_row[1])
        if common is not None:
            a_t, b_t, scale = common
            out = out + torch.matmul(torch.matmul(x, a_t) * scale, b_t)
        return out

    return forward


def _stack(
    name: str, own: Sequence[list[tuple[LoraWeights, float]]], layer: nn.Linear
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Each row's own LoRAs for one layer: ``Aᵀ`` as ``[rows, in, r]`` (weights folded in) and
    ``Bᵀ`` as ``[rows, r, out]``, zero-padded to the largest rank; zero for a row with none."""
    parts: list[tuple[torch.Tensor, torch.Tensor] | None] = []
    for loras in own:
        found = [(lora.transposed[name], w) for lora, w in loras if name in lora.modules]
        if not found:
            parts.append(None)
        elif len(found) == 1 and found[0][1] == 1.0:
            parts.append(found[0][0])
        else:
            parts.append(
                (
                    torch.cat([a * w for (a, _), w in found], dim=1),
                    torch.cat([b for (_, b), _ in found], dim=0),
                )
            )
    present = [p for p in parts if p is not None]
    if not present:
        return None
    rank = max(p[0].shape[1] for p in present)
    if len(present) == len(parts) and all(p[0].shape[1] == rank for p in present):
        return torch.stack([p[0] for p in present]), torch.stack([p[1] for p in present])
    weight = layer.weight
    a_t = weight.new_zeros(len(parts), layer.in_features, rank)
    b_t = weight.new_zeros(len(parts), rank, layer.out_features)
    for i, part in enumerate(parts):
        if part is not None:
            a_t[i, :, : part[0].shape[1]] = part[0]
            b_t[i, : part[1].shape[0], :] = part[1]
    return a_t, b_t
