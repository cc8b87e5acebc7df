"""Fit a LoRA adapter with TRL: DPO from preference pairs, KTO from thumbs.

The base model is frozen; TRL's trainers add a LoRA from ``peft_config`` and use the base (adapter
disabled) as the reference. Progress goes to a callback as (fraction done, latest loss), which the
Celery task turns into task state the API can read.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from transformers.trainer_callback import PrinterCallback
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

log = logging.getLogger(__name__)
Progress = Callable[[float, float | None], None]
"""Called as ``progress(fraction_done, latest_loss)`` during a fit."""


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class ThumbExample:
    prompt: str
    completion: str
    label: bool


@dataclass(frozen=True)
class FitSettings:
    """LoRA and optimization settings of a fit (Django settings hold the deployed values).

    The defaults are a user adapter's, measured with ``./attune bench adapters`` on the offline
    style model: DPO alone (lr 5e-4 or 3e-3) drives the rejected answers down until greedy
    outputs degenerate (0-30% in the user's style); adding the SFT term on the chosen answers
    (RPO, ``sft_weight``) makes the model write them (100%), in 16 steps for 32 pairs.
    """

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None  # None: every linear layer but the output head
    learning_rate: float = 2e-3
    epochs: int = 4
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 8
    beta: float = 0.1
    sft_weight: float = 1.0  # RPO: weight of an SFT (NLL per token) term on the chosen answers
    max_length: int = 512
    seed: int = 0

    def lora_config(self) -> LoraConfig:
        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules) if self.target_modules else "all-linear",
            task_type="CAUSAL_LM",
        )


DEFAULT_FIT = FitSettings()


@dataclass
class FitResult:
    """A fitted adapter (inside ``model`` as the ``default`` adapter) and the run's figures."""

    model: PeftModel
    steps: int
    seconds: float
    final_loss: float | None
    examples: int
    losses: list[float] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # the trainer's last logged figures

    def figures(self) -> dict[str, object]:
        return {
            "steps": self.steps,
            "seconds": round(self.seconds, 2),
            "final_loss": self.final_loss,
            "examples": self.examples,
        }


class _ProgressCallback(TrainerCallback):
    def __init__(self, progress: Progress | None, losses: list[float]) -> None:
        self.progress = progress
        self.losses = losses
        self.metrics: dict[str, float] = {}

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))
            self.metrics = {k: float(v) for k, v in logs.items() if isinstance(v, int | float)}

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if self.progress is not None and state.max_steps:
            latest = self.losses[-1] if self.losses else None
            self.progress(state.global_step / state.max_steps, latest)


def _common_args(settings: FitSettings, examples: int, output_dir: str) -> dict[str, object]:
    steps_per_epoch = max(1, math.ceil(examples / settings.batch_size))
    return {
        "output_dir": output_dir,
        "per_device_train_batch_size": settings.batch_size,
        "learning_rate": settings.learning_rate,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "seed": settings.seed,
        "use_cpu": not torch.cuda.is_available(),
        "bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        "lr_scheduler_type": "constant",
        "warmup_steps": min(2, steps_per_epoch),
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "remove_unused_columns": False,
        "gradient_checkpointing": False,  # small adapters fit in memory; checkpointing only slows
    }


def _run(trainer: DPOTrainer | KTOTrainer, callback: _ProgressCallback, examples: int) -> FitResult:
    trainer.remove_callback(PrinterCallback)  # progress goes to the callback, not to stdout
    started = time.perf_counter()
    trainer.train()
    model = trainer.model
    assert isinstance(model, PeftModel)
    model.eval()
    return FitResult(
        model=model,
        steps=trainer.state.global_step,
        seconds=time.perf_counter() - started,
        final_loss=callback.losses[-1] if callback.losses else None,
        examples=examples,
        losses=callback.losses,
        metrics=callback.metrics,
    )


def _fit(
    trainer_class: type,
    config_class: type,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[dict[str, Any]],
    settings: FitSettings,
    progress: Progress | None,
    **config: Any,
) -> FitResult:
    """Train a LoRA with one of TRL's preference trainers (DPO, KTO) on ``rows``."""
    callback = _ProgressCallback(progress, [])
    with tempfile.TemporaryDirectory(prefix="attune-fit-") as out:
        args = config_class(
            **_common_args(settings, len(rows), out),
            beta=settings.beta,
            max_length=settings.max_length,
            **config,
        )
        trainer = trainer_class(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=settings.lora_config(),
            callbacks=[callback],
        )
        return _run(trainer, callback, len(rows))


def fit_dpo(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[PreferencePair],
    settings: FitSettings = DEFAULT_FIT,
    progress: Progress | None = None,
) -> FitResult:
    """DPO on (prompt, chosen, rejected) pairs; returns the model with the fitted LoRA."""
    if not pairs:
        raise ValueError("DPO needs at least one preference pair")
    losses = {"loss_type": ["sigmoid"], "loss_weights": [1.0]}
    if settings.sft_weight > 0:
        losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, settings.sft_weight]}
    rows = [asdict(p) for p in pairs]
    return _fit(DPOTrainer, DPOConfig, model, tokenizer, rows, settings, progress, **losses)


def fit_kto(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[ThumbExample],
    settings: FitSettings = DEFAULT_FIT,
    progress: Progress | None = None,
) -> FitResult:
    """KTO on thumbs (prompt, completion, desirable?); needs both labels present."""
    labels = {e.label for e in examples}
    if labels != {True, False}:
        raise ValueError("KTO needs at least one thumbs-up and one thumbs-down example")
    rows = [asdict(e) for e in examples]
    return _fit(KTOTrainer, KTOConfig, model, tokenizer, rows, settings, progress)
