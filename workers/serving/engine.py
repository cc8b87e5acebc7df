"""The generation engine: one base model, many rows per batch, each with its own adapter,
sampling settings, stop strings and token stream.

Rows of one batch go through a single Hugging Face ``generate`` call. :class:`BatchControl` is
both its logits processor (per-row temperature and top-p sampling, each row with its own seeded
generator, so a row samples the same text whatever else shares its batch) and its stopping
criteria (per row: end of text, a stop string, its own ``max_tokens``, or cancellation), and it
reports each row's new text as it comes.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)

from workers.modeling.copy_config import MODEL_TYPE as COPY_MODEL_TYPE
from workers.serving.lora import Components, LoraWeights
from workers.serving.runtime import LoraRuntime

Sink = Callable[["RowEvent"], None]


@dataclass(frozen=True)
class RowEvent:
    """``kind`` is ``delta`` (new ``text``), ``done`` (final ``text``, ``finish_reason``,
    ``tokens``) or ``error`` (``text`` says what failed)."""

    kind: str
    text: str
    finish_reason: str = ""
    tokens: int = 0


@dataclass
class Row:
    """One sequence to generate."""

    prompt_ids: list[int]
    lora: Components | LoraWeights | None
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    stream: bool = False
    ignore_eos: bool = False  # always generate max_tokens (benchmarks)
    sink: Sink | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    # filled while generating
    tokens: list[int] = field(default_factory=list)
    emitted: int = 0
    finish_reason: str = ""
    text: str = ""

    @property
    def done(self) -> bool:
        return bool(self.finish_reason)


class BatchControl:
    """Per-row sampling and stopping for one ``generate`` call (see the module docstring)."""

    def __init__(
        self, rows: Sequence[Row], tokenizer: PreTrainedTokenizerBase, eos_ids: set[int]
    ) -> None:
        self.rows = rows
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.generators = []
        for row in rows:
            g = torch.Generator()
            g.manual_seed(row.seed if row.seed is not None else random.getrandbits(63))
            self.generators.append(g)

    # --- logits processor: choose each sampling row's token; greedy rows keep their scores
    def _sample(self, scores: torch.Tensor) -> torch.Tensor:
        if all(row.done or row.temperature <= 0.0 for row in self.rows):
            return scores  # greedy rows: generate's argmax picks their token
        out = scores.clone()
        for i, row in enumerate(self.rows):
            if row.done or row.temperature <= 0.0:
                continue
            logits = scores[i].float() / row.temperature
            if row.top_p < 1.0:
                sorted_logits, order = torch.sort(logits, descending=True)
                cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
                drop = cumulative - torch.softmax(sorted_logits, dim=-1) >= row.top_p
                drop[0] = False  # the most likely token always stays (top_p = 0: greedy)
                logits[order[drop]] = float("-inf")
            probs = torch.softmax(logits, dim=-1).cpu()
            choice = int(torch.multinomial(probs, 1, generator=self.generators[i]))
            out[i] = float("-inf")
            out[i, choice] = 0.0
        return out

    # --- stopping criteria: take each row's new token, emit text, decide whether it is done
    def _stop(self, input_ids: torch.Tensor) -> torch.Tensor:
        new = input_ids[:, -1].tolist()
        for row, token in zip(self.rows, new, strict=True):
            if row.done:
                continue
            if row.cancelled.is_set():
                row.finish_reason = "cancelled"
                continue
            if token in self.eos_ids and not row.ignore_eos:
                self._finish(row, "stop")
                continue
            row.tokens.append(token)
            if row.stream or row.stop:
                self._progress(row)
            if not row.done and len(row.tokens) >= row.max_tokens:
                self._finish(row, "length")
        return torch.tensor([row.done for row in self.rows], device=input_ids.device)

    def _decode(self, row: Row) -> str:
        # NUL can decode from a byte-level token; no client wants it and PostgreSQL can't store it
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        return text.replace("\x00", "").lstrip()

    def _progress(self, row: Row) -> None:
        text = self._decode(row)
        for stop in row.stop:
            at = text.find(stop)
            if at >= 0:
                row.text = text[:at]
                self._finish(row, "stop", decoded=True)
                return
        if not row.stream:
            return
        hold = max((len(s) - 1 for s in row.stop), default=0)  # a stop string may be starting
        safe = text.rstrip("\ufffd")  # an incomplete character waits for its next token
        safe = safe[: len(safe) - hold].rstrip()  # trailing spaces wait too (the end strips)
        if len(safe) > row.emitted:
            self._emit(row, RowEvent("delta", safe[row.emitted :]))
            row.emitted = len(safe)

    def _finish(self, row: Row, reason: str, decoded: bool = False) -> None:
        if not decoded:
            row.text = self._decode(row)
        row.text = row.text.rstrip()
        if row.stream and len(row.text) > row.emitted:
            self._emit(row, RowEvent("delta", row.text[row.emitted :]))
            row.emitted = len(row.text)
        row.finish_reason = reason
        self._emit(row, RowEvent("done", row.text, reason, len(row.tokens)))

    @staticmethod
    def _emit(row: Row, event: RowEvent) -> None:
        if row.sink is not None:
            row.sink(event)

    def finish_all(self) -> None:
        """Rows still open when ``generate`` returned (its own length limit) end with length."""
        for row in self.rows:
            if not row.done:
                if row.cancelled.is_set():
                    row.finish_reason = "cancelled"
                else:
                    self._finish(row, "length")


class _Stopper(StoppingCriteria):
    def __init__(self, control: BatchControl) -> None:
        self.control = control

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object):
        return self.control._stop(input_ids)


class _Sampler(LogitsProcessor):
    def __init__(self, control: BatchControl) -> None:
        self.control = control

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return self.control._sample(scores)


SMALL_MODEL_PARAMETERS = 100_000_000


def choose_threads(model: PreTrainedModel, threads: int = 0) -> int:
    """Set torch's CPU threads for serving and return the number: ``threads`` when given, else 1
    for a small model on the CPU (intra-op threads cost more than they give on its tiny matrices,
    most of all beside other processes), else torch's default."""
    on_cpu = next(model.parameters()).device.type == "cpu"
    if threads <= 0 and on_cpu and model.num_parameters() < SMALL_MODEL_PARAMETERS:
        threads = 1
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def sampling_defaults(model: PreTrainedModel) -> tuple[float, float]:
    """(temperature, top_p) for a request that names neither, as vLLM reads a model's own
    generation config: the built-in style model decodes greedily (it is so sure of each token
    that sampling changes an answer only by a slip, a misspelt word at a sentence's start in 7
    of 100 answers at 1.0); a model whose generation config samples gets its temperature and
    top_p (Qwen2.5-Instruct: 0.7, 0.8); any other OpenAI's 1.0 and 1.0."""
    if model.config.model_type == COPY_MODEL_TYPE:
        return 0.0, 1.0
    config = model.generation_config
    if getattr(config, "do_sample", False):
        return float(config.temperature or 1.0), float(config.top_p or 1.0)
    return 1.0, 1.0


class Engine:
    """The base model loaded once, with its tokenizer and the LoRA runtime."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.runtime = LoraRuntime(model)
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self.pad_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)
        )
        self.context_length = int(getattr(model.config, "max_position_embeddings", None) or 2048)
        self.sampling_defaults = sampling_defaults(model)
        self.last_mode = "base"

    @torch.inference_mode()
    def run(self, rows: Sequence[Row]) -> None:
        """Generate every row to its end; results go to each row's sink (and stay on the row)."""
        width = max(len(r.prompt_ids) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row.prompt_ids) :] = torch.tensor(row.prompt_ids)
            mask[i, width - len(row.prompt_ids) :] = 1
        control = BatchControl(rows, self.tokenizer, self.eos_ids)
        config = GenerationConfig(
            max_new_tokens=max(r.max_tokens for r in rows),
            do_sample=False,
            pad_token_id=self.pad_id,
            eos_token_id=None if all(r.ignore_eos for r in rows) else sorted(self.eos_ids),
        )
        with self.runtime.applied([r.lora for r in rows]) as mode:
            self.last_mode = mode
            self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                generation_config=config,
                logits_processor=LogitsProcessorList([_Sampler(control)]),
                stopping_criteria=StoppingCriteriaList([_Stopper(control)]),
            )
        control.finish_all()
