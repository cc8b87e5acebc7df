"""Adapter files: safetensors only, under one storage root, checked before anything loads them.

An adapter folder holds PEFT's ``adapter_config.json`` and ``adapter_model.safetensors`` plus
``attune_adapter.json`` (the base model's fingerprint and the weights' SHA-256). ``verify`` refuses
a folder outside the root, a pickle file, a corrupt or altered weights file, or an adapter made for
another base model, with a clear :class:`AdapterRejected` message; nothing unverified is executed
or loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch
from peft import PeftModel
from safetensors import SafetensorError, safe_open
from transformers import PreTrainedModel

WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
MANIFEST_FILE = "attune_adapter.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class AdapterRejected(ValueError):
    """An adapter folder that must not be loaded; the message says why."""


def base_fingerprint(model: torch.nn.Module) -> str:
    """A short, stable identity of a base model: its parameter names, shapes, dtypes and a sample
    of its weights (so a retrained model of the same shape has another fingerprint)."""
    digest = hashlib.sha256()
    params = dict(model.named_parameters())
    for name in sorted(params):
        p = params[name]
        digest.update(f"{name}:{tuple(p.shape)}:{p.dtype}".encode())
    for name in sorted(params)[:: max(1, len(params) // 8)]:
        sample = params[name].detach().flatten()[:256].to(torch.float32).cpu()
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class AdapterStore:
    """All adapter folders live under ``root``; paths are built from safe segments only."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def folder(self, *segments: str | int) -> Path:
        """``root/seg1/seg2/…``; each segment must be a plain name (no separators, no ``..``)."""
        parts = [str(s) for s in segments]
        for part in parts:
            if not _SAFE_SEGMENT.match(part) or part in {".", ".."}:
                raise AdapterRejected(f"invalid adapter path segment {part!r}")
        return self.inside(self.root.joinpath(*parts))

    def inside(self, path: Path | str) -> Path:
        """``path`` resolved, if it is inside the root; refuses anything that leaves it."""
        candidate = Path(path)
        resolved = (candidate if candidate.is_absolute() else self.root / candidate).resolve()
        if not resolved.is_relative_to(self.root):
            raise AdapterRejected(f"adapter path {str(path)!r} is outside the adapter store")
        return resolved

    def save(
        self, model: PeftModel, adapter_name: str, folder: Path, fingerprint: str, **facts: object
    ) -> Path:
        """Save one adapter of ``model`` as safetensors with its manifest; returns the folder."""
        folder = self.inside(folder)
        model.save_pretrained(
            str(folder), selected_adapters=[adapter_name], safe_serialization=True
        )
        saved = folder / adapter_name if (folder / adapter_name / WEIGHTS_FILE).exists() else folder
        if saved != folder:  # PEFT nests non-default adapter names in a sub-folder
            for item in saved.iterdir():
                item.replace(folder / item.name)
            saved.rmdir()
        (folder / "README.md").unlink(missing_ok=True)  # PEFT's model card; the manifest says more
        manifest = {
            "base_fingerprint": fingerprint,
            "weights_sha256": file_sha256(folder / WEIGHTS_FILE),
            **facts,
        }
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return folder

    def verify(self, folder: Path | str, fingerprint: str) -> dict[str, object]:
        """Check an adapter folder before loading it; returns its manifest."""
        folder = self.inside(folder)
        if not folder.is_dir():
            raise AdapterRejected(f"adapter folder {folder.name!r} does not exist")
        pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        if pickles:
            raise AdapterRejected(f"refusing pickle files {pickles}: adapters must be safetensors")
        for required in (WEIGHTS_FILE, CONFIG_FILE, MANIFEST_FILE):
            if not (folder / required).is_file():
                raise AdapterRejected(f"adapter folder lacks {required}")
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text())
            json.loads((folder / CONFIG_FILE).read_text())
        except json.JSONDecodeError as err:
            raise AdapterRejected(f"adapter metadata is not valid JSON: {err}") from err
        if manifest.get("base_fingerprint") != fingerprint:
            raise AdapterRejected(
                "adapter was made for another base model "
                f"(fingerprint {manifest.get('base_fingerprint')!r}, this model {fingerprint!r})"
            )
        if manifest.get("weights_sha256") != file_sha256(folder / WEIGHTS_FILE):
            raise AdapterRejected("adapter weights are corrupt or were altered (checksum mismatch)")
        try:
            with safe_open(str(folder / WEIGHTS_FILE), framework="pt") as handle:
                keys = list(handle.keys())
        except (SafetensorError, OSError) as err:
            raise AdapterRejected(f"adapter weights are not valid safetensors: {err}") from err
        if not keys or not all("lora_" in k for k in keys):
            raise AdapterRejected("adapter weights hold tensors that are not LoRA matrices")
        return manifest

    def load(
        self,
        model: PreTrainedModel | PeftModel,
        folder: Path | str,
        adapter_name: str,
        fingerprint: str,
    ) -> PeftModel:
        """Verify, then load the adapter into ``model`` (wrapped in a PeftModel if it is not one
        yet) under ``adapter_name``; returns the PeftModel."""
        folder = self.inside(folder)
        self.verify(folder, fingerprint)
        try:
            if isinstance(model, PeftModel):
                model.load_adapter(str(folder), adapter_name=adapter_name)
                return model
            return PeftModel.from_pretrained(model, str(folder), adapter_name=adapter_name)
        except (RuntimeError, ValueError, KeyError) as err:  # shape or module mismatch
            raise AdapterRejected(f"adapter does not fit this base model: {err}") from err
