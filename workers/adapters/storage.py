"""Adapters in the artifact store (:mod:`core.artifacts`): safetensors only, checked before
anything loads them.

An adapter is a folder with PEFT's ``adapter_config.json`` and ``adapter_model.safetensors`` plus
``attune_adapter.json`` (the base model's fingerprint and the weights' SHA-256). :meth:`save`
writes it in this node's scratch folder and puts it in the store; rows record the ref it returns.
:meth:`verify` fetches a ref (the store checks every file's checksum and refuses paths that leave
the folder) and refuses a pickle file, an altered weights file or an adapter made for another base
model, with a clear :class:`AdapterRejected` message; nothing unverified is executed or loaded.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import torch
from peft import PeftModel
from safetensors import SafetensorError, safe_open
from transformers import PreTrainedModel

from core.artifacts import ArtifactStore
from core.errors import ArtifactError

WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
MANIFEST_FILE = "attune_adapter.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


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
    """Adapters by ref in ``artifacts``; ``scratch`` is this node's folder for writing one."""

    def __init__(self, artifacts: ArtifactStore, scratch: Path) -> None:
        self.artifacts = artifacts
        self.scratch = scratch

    def put(self, folder: Path) -> str:
        """Put an adapter folder written here (``write_peft``, :meth:`save`) in the store."""
        try:
            return self.artifacts.put(folder)
        except ArtifactError as err:
            raise AdapterRejected(str(err)) from err

    def folder(self, ref: str) -> Path:
        """This node's read-only copy of the adapter ``ref`` (fetched on a miss)."""
        try:
            return self.artifacts.fetch(ref)
        except ArtifactError as err:
            raise AdapterRejected(f"adapter {ref!r}: {err}") from err

    def save(self, model: PeftModel, adapter_name: str, fingerprint: str, **facts: object) -> str:
        """Save one adapter of ``model`` as safetensors with its manifest, put it in the store;
        returns its ref."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.scratch, prefix="adapter-") as tmp:
            folder = Path(tmp) / "adapter"
            model.save_pretrained(
                str(folder), selected_adapters=[adapter_name], safe_serialization=True
            )
            nested = folder / adapter_name
            if (nested / WEIGHTS_FILE).exists():  # PEFT nests non-default adapter names
                for item in nested.iterdir():
                    item.replace(folder / item.name)
                nested.rmdir()
            (folder / "README.md").unlink(
                missing_ok=True
            )  # PEFT's model card; the manifest says more
            manifest = {
                "base_fingerprint": fingerprint,
                "weights_sha256": file_sha256(folder / WEIGHTS_FILE),
                **facts,
            }
            (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
            return self.put(folder)

    def verify(self, ref: str, fingerprint: str) -> dict[str, object]:
        """Check the adapter ``ref`` before loading it; returns its manifest."""
        return check_folder(self.folder(ref), fingerprint)

    def load(
        self,
        model: PreTrainedModel | PeftModel,
        ref: str,
        adapter_name: str,
        fingerprint: str,
    ) -> PeftModel:
        """Verify, then load the adapter into ``model`` (wrapped in a PeftModel if it is not one
        yet) under ``adapter_name``; returns the PeftModel."""
        folder = self.folder(ref)
        check_folder(folder, fingerprint)
        try:
            if isinstance(model, PeftModel):
                model.load_adapter(str(folder), adapter_name=adapter_name)
                return model
            return PeftModel.from_pretrained(model, str(folder), adapter_name=adapter_name)
        except (RuntimeError, ValueError, KeyError) as err:  # shape or module mismatch
            raise AdapterRejected(f"adapter does not fit this base model: {err}") from err


def check_folder(folder: Path, fingerprint: str) -> dict[str, object]:
    """The checks of one adapter folder: safetensors LoRA matrices only, its manifest, the
    weights' checksum, the base model's fingerprint; returns the manifest."""
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
