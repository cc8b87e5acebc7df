"""LoRA weights as plain tensors: load a stored adapter, compose exactly, write for a remote server.

A :class:`LoraWeights` maps each adapted module of the base model (its name in the plain model,
e.g. ``model.layers.0.self_attn.q_proj``) to ``(A, B)`` with the adapter's scaling folded into A,
so the module's update is ``B @ A``. Composition is PEFT's ``cat`` combination
(``workers.adapters.compose``): the A matrices, each scaled by its weight, and the B matrices are
stacked along the rank, so the composed update is exactly ``Σ_k w_k · s_k · B_k A_k``.
A test checks it against PEFT's own ``add_weighted_adapter(..., "cat")``. Working on tensors
instead of injecting a PEFT adapter per user keeps a cold load and a composition to a few
milliseconds, and lets the scheduler batch many users' adapters together.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from workers.adapters.storage import (
    CONFIG_FILE,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    AdapterRejected,
    AdapterStore,
    check_folder,
    file_sha256,
)

_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>[AB])(?:\.[^.]+)?\.weight$"
)


@dataclass(frozen=True)
class LoraWeights:
    """Per module ``(A, B)``: A is ``[r, in]`` (scaling folded in), B is ``[out, r]``."""

    modules: Mapping[str, tuple[torch.Tensor, torch.Tensor]]

    @cached_property
    def transposed(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per module ``(Aᵀ, Bᵀ)`` contiguous, as the stacked (mixed-batch) path reads them;
        computed once per cached adapter."""
        return {k: (a.t().contiguous(), b.t().contiguous()) for k, (a, b) in self.modules.items()}

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes + b.nbytes for a, b in self.modules.values())

    @property
    def rank(self) -> int:
        return max((a.shape[0] for a, _ in self.modules.values()), default=0)

    def scaled(self, weight: float) -> LoraWeights:
        return LoraWeights({k: (a * weight, b) for k, (a, b) in self.modules.items()})

    def to(self, device: torch.device | str, dtype: torch.dtype) -> LoraWeights:
        return LoraWeights(
            {k: (a.to(device, dtype), b.to(device, dtype)) for k, (a, b) in self.modules.items()}
        )


@dataclass(frozen=True)
class Components:
    """Weights as a weighted sum of LoRAs: the user's LoRA (weight 1) and each preference vector's
    θ₊ (η) and θ₋ (−η). Shared LoRAs (the vectors) stay one object for every user, so a batch
    reads them once; :func:`compose` turns the sum into one LoRA where one is needed."""

    parts: tuple[tuple[LoraWeights, float], ...]

    @property
    def key(self) -> tuple[tuple[int, float], ...]:
        return tuple((id(lora), weight) for lora, weight in self.parts if weight != 0.0)

    def composed(self) -> LoraWeights | None:
        return compose(self.parts)


def _pattern_value(patterns: Mapping[str, object], module: str, default: float) -> float:
    for key, value in patterns.items():
        if module == key or module.endswith("." + key) or re.fullmatch(key, module):
            return float(value)  # type: ignore[arg-type]
    return default


def _scaling(config: Mapping[str, object], module: str, rank: int) -> float:
    alpha = _pattern_value(config.get("alpha_pattern") or {}, module, float(config["lora_alpha"]))
    if config.get("use_rslora"):
        return alpha / math.sqrt(rank)
    return alpha / rank


def read_lora(folder: Path) -> LoraWeights:
    """The LoRA of a PEFT adapter folder (safetensors only; checked first by :func:`load_lora`)."""
    config = json.loads((folder / CONFIG_FILE).read_text())
    if config.get("peft_type", "LORA") != "LORA":
        raise AdapterRejected(f"not a LoRA adapter (peft_type {config.get('peft_type')!r})")
    for flag in ("use_dora", "fan_in_fan_out"):
        if config.get(flag):
            raise AdapterRejected(f"adapters with {flag} are not supported by the serving engine")
    if config.get("lora_bias") or config.get("bias", "none") != "none":
        raise AdapterRejected("adapters with bias terms are not supported by the serving engine")
    parts: dict[str, dict[str, torch.Tensor]] = {}
    with safe_open(str(folder / WEIGHTS_FILE), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
            match = _KEY.match(key)
            if match is None:
                raise AdapterRejected(f"unexpected tensor {key!r} in the adapter")
            parts.setdefault(match["module"], {})[match["part"]] = handle.get_tensor(key)
    modules = {}
    for module, ab in parts.items():
        if set(ab) != {"A", "B"}:
            raise AdapterRejected(f"module {module!r} lacks its lora_A or lora_B matrix")
        a, b = ab["A"].float(), ab["B"].float()
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
            raise AdapterRejected(f"module {module!r} has LoRA matrices of mismatched shapes")
        modules[module] = (a * _scaling(config, module, a.shape[0]), b)
    if not modules:
        raise AdapterRejected("adapter holds no LoRA matrices")
    return LoraWeights(modules)


def load_lora(store: AdapterStore, ref: str, fingerprint: str) -> LoraWeights:
    """Fetch the adapter ``ref`` from the store, verify it (pickles, checksum, base model), then
    read it."""
    folder = store.folder(ref)
    check_folder(folder, fingerprint)
    return read_lora(folder)


def compose(components: Sequence[tuple[LoraWeights, float]]) -> LoraWeights | None:
    """``Σ w_k · lora_k`` as one LoRA (rank ``Σ r_k``); weights of 0 are left out; None when
    nothing remains (the base model)."""
    kept = [(lora, float(w)) for lora, w in components if w != 0.0]
    if not kept:
        return None
    if len(kept) == 1 and kept[0][1] == 1.0:
        return kept[0][0]
    modules: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
    for lora, weight in kept:
        for name, (a, b) in lora.modules.items():
            a_parts, b_parts = modules.setdefault(name, ([], []))
            a_parts.append(a * weight)
            b_parts.append(b)
    return LoraWeights(
        {name: (torch.cat(a, dim=0), torch.cat(b, dim=1)) for name, (a, b) in modules.items()}
    )


def check_fits(lora: LoraWeights, linears: Mapping[str, torch.nn.Linear]) -> None:
    """Refuse a LoRA whose modules or shapes do not match the base model's linear layers."""
    for name, (a, b) in lora.modules.items():
        layer = linears.get(name)
        if layer is None:
            raise AdapterRejected(
                f"adapter module {name!r} is not a linear layer of the base model"
            )
        if a.shape[1] != layer.in_features or b.shape[0] != layer.out_features:
            raise AdapterRejected(f"adapter module {name!r} does not fit the base model's shape")


def write_peft(
    lora: LoraWeights, folder: Path, fingerprint: str, base_model: str, **facts: object
) -> Path:
    """Write ``lora`` as a PEFT LoRA folder (scaling 1: ``lora_alpha == r``), with Attune's
    manifest; this is what a remote server such as vLLM loads."""
    folder.mkdir(parents=True, exist_ok=True)
    rank = lora.rank
    tensors = {}
    for name, (a, b) in lora.modules.items():  # pad to one rank so a single config describes all
        pad = rank - a.shape[0]
        a_full = torch.cat([a, a.new_zeros(pad, a.shape[1])]) if pad else a
        b_full = torch.cat([b, b.new_zeros(b.shape[0], pad)], dim=1) if pad else b
        tensors[f"base_model.model.{name}.lora_A.weight"] = a_full.float().contiguous()
        tensors[f"base_model.model.{name}.lora_B.weight"] = b_full.float().contiguous()
    save_file(tensors, str(folder / WEIGHTS_FILE))
    targets = sorted({name.rsplit(".", 1)[-1] for name in lora.modules})
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": rank,
        "lora_alpha": rank,
        "lora_dropout": 0.0,
        "bias": "none",
        "target_modules": targets,
        "use_rslora": False,
        "use_dora": False,
        "fan_in_fan_out": False,
        "inference_mode": True,
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    manifest = {
        "base_fingerprint": fingerprint,
        "weights_sha256": file_sha256(folder / WEIGHTS_FILE),
        **facts,
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return folder
