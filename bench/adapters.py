"""Per-user LoRA and preference vectors: style match after a fit, an η sweep, fit times.

    ./attune bench adapters                 # on the offline style model (CPU or GPU)
    ./attune bench adapters --gpu-shape     # fit time of a Qwen2-0.5B-shaped model (random weights)

Figures:
- user adapter: a simulated user who wants "brief, bullet points" edits 32 of the base model's
  untagged outputs; a DPO LoRA is fitted on those 32 edit pairs; then 100 held-out contexts are
  generated without any tag and the share in the user's style is printed for base and adapter;
- preference vector: θ₊/θ₋ fitted for one dimension (``--vector all``: each in turn) and φ's scale
  calibrated (``workers.adapters.vectors.calibrate``: the scale printed, with the held-out
  log-likelihood of the poles at each scale tried); η swept over −1 … 1.5; the rate of the
  dimension's positive pole at each η and the Spearman correlation between η and that rate;
- fit time: seconds to fit 32 pairs (and 64 pairs for --gpu-shape).

The user adapter is fitted with ``DEFAULT_FIT`` and the vector's poles with ``DEFAULT_VECTOR_FIT``
(the options below override either); the machine's load average is printed before and after,
since the CPU is often shared.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import time

# Idle OpenMP threads sleep instead of spinning (only effective before torch loads): the CPU is
# often shared with other jobs, and spinning threads slow a small-model fit several-fold.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from core.dimensions import OFFLINE_DIMENSIONS, dimension
from core.prompting import build_prompt
from core.world.detectors import detect_style
from core.world.renderer import TASKS, render
from core.world.simulated_users import SimulatedUser
from core.world.sources import SOURCE_NAMES, Context, make_context
from core.world.styles import default_style
from workers.adapters.compose import Component, compose, preference_vector
from workers.adapters.fit import DEFAULT_FIT, FitSettings, PreferencePair, fit_dpo
from workers.adapters.vectors import DEFAULT_VECTOR_FIT, attach_negative, fit_vector

USER_STYLE = {"length": "short", "format": "bullets"}
SWEEP = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5)


def contexts(count: int, offset: int) -> list[tuple[Context, str]]:
    rng = random.Random(offset)
    items = []
    for i in range(count):
        source = SOURCE_NAMES[i % len(SOURCE_NAMES)]
        items.append((make_context(source, offset + 2 * i + 1), rng.choice(TASKS)))
    return items


def generate(model, tokenizer, items: list[tuple[Context, str]]) -> list[str]:
    """Untagged outputs (the model's own default style, or what an adapter makes of it)."""
    from workers.modeling.generation import GenerationRequest, generate_texts

    requests = [GenerationRequest(task, ctx.text) for ctx, task in items]
    return generate_texts(model, tokenizer, requests, max_new_tokens=160)


def style_rate(texts: list[str], wanted: dict[str, str]) -> float:
    hits = [all(detect_style(t).get(k) == v for k, v in wanted.items()) for t in texts]
    return sum(hits) / len(hits)


def spearman(xs: list[float], ys: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(xs, ys).statistic)


def user_adapter_figures(settings: FitSettings, pairs: int, heldout: int) -> dict:
    from workers.modeling.loader import load_base_model

    model, tokenizer = load_base_model()
    user = SimulatedUser("brief-bullets", preferences={s: USER_STYLE for s in SOURCE_NAMES})
    train = contexts(pairs, offset=10_000)
    outputs = generate(model, tokenizer, train)
    data = [
        PreferencePair(build_prompt(task, ctx.text), user.respond(ctx, task, output).edited, output)
        for (ctx, task), output in zip(train, outputs, strict=True)
    ]
    test = contexts(heldout, offset=50_000)
    base_rate = style_rate(generate(model, tokenizer, test), USER_STYLE)
    started = time.perf_counter()
    result = fit_dpo(model, tokenizer, data, settings)
    seconds = time.perf_counter() - started
    adapted_rate = style_rate(generate(result.model, tokenizer, test), USER_STYLE)
    return {"base_rate": base_rate, "adapted_rate": adapted_rate, "fit_seconds": seconds,
            "steps": result.steps, "metrics": result.metrics}  # fmt: skip


def vector_figures(name: str, settings: FitSettings, pairs: int, heldout: int) -> dict:
    from workers.modeling.loader import load_base_model, load_tokenizer

    dim = dimension(name)
    fitted = fit_vector(load_base_model, dim, pairs, settings)
    model, tokenizer = fitted.positive.model, load_tokenizer()
    attach_negative(model, fitted.negative.model, "neg")
    preference_vector(model, "default", "neg", "phi")
    test = contexts(heldout, offset=70_000)
    rates = []
    for eta in SWEEP:
        name_eta = compose(model, [Component("phi", eta)], "sweep")
        if name_eta is None:
            with model.disable_adapter():
                texts = generate(model, tokenizer, test)
        else:
            model.set_adapter(name_eta)
            texts = generate(model, tokenizer, test)
        rates.append(style_rate(texts, {dim.attribute: dim.positive}))
    return {"rates": rates, "spearman": spearman(list(SWEEP), rates), "scale": fitted.scale,
            "calibration": fitted.calibration}  # fmt: skip


def gpu_shape_fit(pairs: int, settings: FitSettings) -> dict[str, float]:
    """Fit time of a Qwen2-0.5B-shaped model built from its config (random weights)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from workers.modeling.style_corpus import train_tokenizer

    rng = random.Random(0)
    data = []
    for i in range(pairs):
        ctx = make_context(SOURCE_NAMES[i % len(SOURCE_NAMES)], 2 * i + 1)
        task = rng.choice(TASKS)
        chosen = render(ctx, task, {**default_style(), **USER_STYLE})
        data.append(PreferencePair(build_prompt(task, ctx.text), chosen, render(ctx, task)))
    texts = [t for p in data for t in (p.prompt, p.chosen, p.rejected)]
    tokenizer = train_tokenizer(texts, vocab_size=4096)
    config = Qwen2Config(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = Qwen2ForCausalLM(config).to(device=device, dtype=dtype)
    params = sum(p.numel() for p in model.parameters())
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = fit_dpo(model, tokenizer, data, settings)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    return {"params_m": params / 1e6, "fit_seconds": seconds, "steps": result.steps,
            "peak_gib": peak}  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench adapters", description=__doc__)
    parser.add_argument("--pairs", type=int, default=32, help="edit pairs for the user adapter")
    parser.add_argument("--heldout", type=int, default=100, help="held-out contexts")
    parser.add_argument("--vector", default="tone-casual-vs-formal", help="a dimension, or all")
    parser.add_argument("--vector-pairs", type=int, default=64)
    parser.add_argument("--gpu-shape", action="store_true", help="Qwen2-0.5B-shaped fit time only")
    parser.add_argument("--gpu-pairs", type=int, default=64)
    parser.add_argument("--epochs", type=int, help="user adapter epochs (default: DEFAULT_FIT)")
    parser.add_argument("--lr", type=float, help="user adapter learning rate")
    parser.add_argument("--sft-weight", type=float, help="user adapter RPO/SFT weight")
    parser.add_argument("--vector-epochs", type=int, help="epochs of each vector pole")
    parser.add_argument("--vector-lr", type=float, help="learning rate of each vector pole")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    settings = _override(
        DEFAULT_FIT, epochs=args.epochs, learning_rate=args.lr, sft_weight=args.sft_weight
    )
    vector_settings = _override(
        DEFAULT_VECTOR_FIT, epochs=args.vector_epochs, learning_rate=args.vector_lr
    )
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"device: {device}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    print(f"load average (1, 5, 15 min): {_load()}")
    print(f"fit settings: {settings}")
    if args.gpu_shape:
        figures = gpu_shape_fit(args.gpu_pairs, settings)
        print(
            f"Qwen2-0.5B-shaped ({figures['params_m']:.0f}M params, random weights): "
            f"{args.gpu_pairs} pairs, {figures['steps']} steps in {figures['fit_seconds']:.1f} s; "
            f"peak GPU memory {figures['peak_gib']:.1f} GiB"
        )
        return 0
    user = user_adapter_figures(settings, args.pairs, args.heldout)
    metrics = user["metrics"]
    print(
        f"user adapter ({args.pairs} edit pairs, 'brief, bullet points'): style match on "
        f"{args.heldout} held-out untagged contexts {user['base_rate']:.0%} (base) -> "
        f"{user['adapted_rate']:.0%} (adapter); fit {user['fit_seconds']:.1f} s "
        f"({user['steps']} steps; last step: reward accuracy "
        f"{metrics.get('rewards/accuracies', float('nan')):.2f}, margin "
        f"{metrics.get('rewards/margins', float('nan')):.2f})"
    )
    print(f"vector settings: {vector_settings}")
    names = [d.name for d in OFFLINE_DIMENSIONS] if args.vector == "all" else [args.vector]
    for name in names:
        _print_vector(name, vector_figures(name, vector_settings, args.vector_pairs,
                                           min(args.heldout, 50)))  # fmt: skip
    print(f"load average (1, 5, 15 min): {_load()}")
    return 0


def _print_vector(name: str, vec: dict) -> None:
    sweep = ", ".join(
        f"η={eta:+.1f}: {rate:.0%}" for eta, rate in zip(SWEEP, vec["rates"], strict=True)
    )
    curve = ", ".join(f"{s}: {v:.1f}" for s, v in vec["calibration"].items())
    print(f"preference vector {name}: calibrated scale {vec['scale']:g} (held-out "
          f"log-likelihood of the poles per scale: {curve})")  # fmt: skip
    print(f"preference vector {name}: {sweep}; Spearman {vec['spearman']:.2f}", flush=True)


def _override(settings: FitSettings, **changes: object) -> FitSettings:
    return dataclasses.replace(settings, **{k: v for k, v in changes.items() if v is not None})


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())
