"""Saved CoPL reward models: ``adapter.safetensors`` (the LoRAs, gate and head; never pickle) and
``config.json`` (format, configuration, metrics, and the weight of the graph's score beside the
reward, ``graph_weight``: see ``workers.collab.graph_mix``) per ``vNNNN`` folder; the backbone is
loaded again by name. A model saved without ``graph_weight`` loads with 0 and scores as before."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from workers.collab.reward import MoLEConfig, PersonalizedRewardModel, build_reward_model

FORMAT = "attune.copl.reward"
FORMAT_VERSION = 1


def save_reward_model(
    model: PersonalizedRewardModel,
    directory: str | Path,
    metrics: dict[str, float] | None = None,
    user_embeddings_version: str | None = None,
) -> Path:
    """Write ``adapter.safetensors`` (LoRAs, gate, head) and ``config.json`` to ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.trainable_state().items()}
    save_file(state, str(directory / "adapter.safetensors"))
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": asdict(model.config),
        "user_embeddings_version": user_embeddings_version,
        "graph_weight": float(model.graph_weight),
        "metrics": metrics or {},
    }
    (directory / "config.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return directory


def load_reward_model(
    directory: str | Path,
    device: torch.device | str = "cpu",
    backbone: PreTrainedModel | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> PersonalizedRewardModel:
    """Rebuild a saved reward model (backbone by name from its config, unless given)."""
    directory = Path(directory)
    meta = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory} is not a {FORMAT} v{FORMAT_VERSION} artifact")
    raw = meta["config"]
    for name in ("layers", "target_modules"):
        if raw.get(name) is not None:
            raw[name] = tuple(raw[name])
    model = build_reward_model(MoLEConfig(**raw), backbone, tokenizer, device)
    state = load_file(str(directory / "adapter.safetensors"))
    missing = set(model.trainable_state()) - set(state)
    if missing:
        raise ValueError(f"{directory} lacks weights for {sorted(missing)[:3]}")
    model.load_state_dict(state, strict=False)
    model.graph_weight = float(meta.get("graph_weight") or 0.0)
    return model.eval()


def next_version_dir(root: str | Path) -> Path:
    """``root/vNNNN`` one above the highest existing version (``v0001`` first); not created."""
    root = Path(root)
    numbers = [int(p.name[1:]) for p in root.glob("v[0-9]*") if p.name[1:].isdigit()]
    return root / f"v{max(numbers, default=0) + 1:04d}"


def latest_version_dir(root: str | Path) -> Path | None:
    """The highest ``root/vNNNN`` holding a saved model, or ``None``."""
    found = sorted(
        (int(p.name[1:]), p)
        for p in Path(root).glob("v[0-9]*")
        if p.name[1:].isdigit() and (p / "config.json").exists()
    )
    return found[-1][1] if found else None
