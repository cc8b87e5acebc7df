"""The cluster benchmark's cold adapter loads: a replica's cache miss, from a local folder or S3."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench._cluster_report import LoadFigures
from bench.generation import random_lora


@contextlib.contextmanager
def s3_location() -> Iterator[tuple[str, dict[str, str]]]:
    """A moto S3 server on 127.0.0.1 with a fresh bucket: (``s3://bucket``, its environment).
    The environment is set in this process too while it runs."""
    from tests.support.s3 import moto_server, s3_client, s3_env

    with moto_server() as endpoint:
        env = s3_env(endpoint)
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            bucket = f"attune-bench-{uuid.uuid4().hex[:12]}"
            s3_client(endpoint).create_bucket(Bucket=bucket)
            yield f"s3://{bucket}", env
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@contextlib.contextmanager
def store_location(kind: str, folder: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``local``: the folder; ``s3``: a bucket on a moto server started here."""
    if kind == "s3":
        with s3_location() as found:
            yield found
    else:
        yield str(folder), {}


# --- part 2: cold adapter loads -------------------------------------------------------------


def style_shaped_model():
    """A model with the style model's layers (random weights; the adapters need only shapes)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from workers.modeling.style_lm import StyleLMConfig

    cfg = StyleLMConfig()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_length, tie_word_embeddings=True,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


def measure_loads(kind: str, label: str, loads: int, rank: int, work: Path) -> LoadFigures:
    """``loads`` fresh adapters put in a ``kind`` store, then each loaded once by a replica with
    an empty node cache (one more, first, unmeasured: imports and first-use costs)."""
    import logging

    import torch

    from core.artifacts import open_store
    from workers.adapters.storage import AdapterStore, base_fingerprint
    from workers.serving.lora import write_peft
    from workers.serving.runtime import adaptable_linears
    from workers.serving.weights import WeightsProvider

    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found credentials in …"
    model = style_shaped_model()
    linears = adaptable_linears(model)
    fingerprint = base_fingerprint(model)
    figures = LoadFigures(label)
    g = torch.Generator().manual_seed(0)
    with store_location(kind, work / f"{kind}-store") as (location, _):
        writer = AdapterStore(open_store(location, work / f"{kind}-writer", 2**40), work / "tmp")
        refs = []
        for i in range(loads + 1):
            folder = write_peft(random_lora(linears, rank, g), work / f"{kind}-adapters" / str(i),
                                fingerprint, "bench", bench=i)  # fmt: skip
            figures.adapter_bytes = sum(p.stat().st_size for p in folder.iterdir())
            started = time.perf_counter()
            refs.append(writer.put(folder))
            figures.put_ms.append((time.perf_counter() - started) * 1000)
        figures.put_ms = figures.put_ms[1:]
        replica = AdapterStore(open_store(location, work / f"{kind}-replica", 2**40), work / "tmp")
        fetch = replica.artifacts.fetch
        fetched: list[float] = []

        def timed_fetch(ref: str) -> Path:
            started = time.perf_counter()
            try:
                return fetch(ref)
            finally:
                fetched.append((time.perf_counter() - started) * 1000)

        replica.artifacts.fetch = timed_fetch  # type: ignore[method-assign]
        provider = WeightsProvider(replica, fingerprint, "bench", 2**30, "cpu", torch.float32,
                                   linears)  # fmt: skip
        for i, ref in enumerate(refs):
            fetched.clear()
            started = time.perf_counter()
            provider.load(ref, fingerprint, "bench")
            elapsed = (time.perf_counter() - started) * 1000
            if i:
                figures.load_ms.append(elapsed)
                figures.fetch_ms.append(sum(fetched))
    return figures


# --- part 1: fits per hour ------------------------------------------------------------------
