"""The built-in offline base model: a small Llama trained on CPU from the style world's corpus.

``python -m workers.modeling.style_lm [--retrain]`` trains it (or finds it cached) and prints the
timing. It is cached under ``$ATTUNE_VAR_DIR/models/style-lm-<VERSION>/`` in Hugging Face format
(``AutoModelForCausalLM`` / ``AutoTokenizer`` load it), with ``attune_style_lm.json`` holding the
training figures. A file lock makes a second process wait for the first one's build.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from filelock import FileLock
from tqdm import tqdm
from transformers import PreTrainedTokenizerFast

from core import config as attune_config
from core.prompting import CONTEXT_TOKEN, RESPONSE_TOKEN
from core.world.prose import LONG_SENTENCE_WORDS, MIN_PIECE_WORDS
from workers.modeling import prose_sources
from workers.modeling.copy_config import CopyLlamaConfig
from workers.modeling.copy_lm import CopyLlamaForCausalLM
from workers.modeling.style_corpus import Example, copy_spans, make_example, train_tokenizer
from workers.modeling.token_tables import token_tables

VERSION = "v5"
METADATA_FILE = "attune_style_lm.json"
IGNORE_INDEX = -100


@dataclass(frozen=True)
class StyleLMConfig:
    """Everything that decides the style model: architecture, corpus and optimization.

    ``length_weights`` skews the corpus towards long responses (more facts to copy per token);
    ``copy_weight`` weighs the loss on the tokens copied from the context, ``frame_weight`` on
    those between two copied units (the frame, where the answer says whether this unit is its
    last); ``prose_share`` of the examples restyle real paragraphs (``prose_paragraphs`` of them,
    found on this machine), in runs of ``prose_sentences`` sentences (None: one to three whole
    paragraphs, as before v5).
    """

    hidden_size: int = 192
    copy_dim: int = 64
    progress_buckets: int = 10
    case_blind_copy: bool = True
    cut_long_sentences: bool = True  # v4: the pointer cuts long sentences as the renderer does
    cursor_reads_prompt: bool = True  # v5: only a match in the prompt moves the reading cursor
    num_layers: int = 2
    num_heads: int = 3
    intermediate_size: int = 512
    vocab_size: int = 4096
    steps: int = 1500
    batch_size: int = 16
    learning_rate: float = 4e-3
    warmup_steps: int = 40
    weight_decay: float = 0.01
    untagged_share: float = 0.1
    partial_share: float = 0.2
    length_weights: tuple[float, float, float] = (0.2, 0.3, 0.5)
    copy_weight: float = 2.0
    frame_weight: float = 3.0  # v5: the frames between copied units weigh more
    tokenizer_examples: int = 3000
    max_length: int = 1024
    prose_share: float = 0.5
    prose_paragraphs: int = 6000
    prose_sentences: tuple[int, int] | None = (2, 7)  # v5: prose contexts of 2 to 7 sentences
    seed: int = 0
    threads: int = 2


@dataclass(frozen=True)
class TrainReport:
    """What a training run did: steps, seconds, final loss, parameter count."""

    steps: int
    seconds: float
    final_loss: float
    parameters: int


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for torch's work in this process."""
    torch.set_num_threads(threads)


def style_lm_dir(var: Path | None = None) -> Path:
    """Where the current version of the style model is (or will be) cached."""
    return (var or attune_config.var_dir()) / "models" / f"style-lm-{VERSION}"


def progress_file(var: Path | None = None) -> Path:
    """Where a build of the current version reports its progress (JSON, rewritten as it goes)."""
    target = style_lm_dir(var)
    return target.with_name(target.name + ".progress.json")


def _report(path: Path | None, stage: str, step: int = 0, steps: int = 0) -> None:
    """Write a build's progress for other processes to read (``/healthz`` of the serving one)."""
    if path is not None:
        staging = path.with_suffix(".tmp")
        staging.write_text(json.dumps({"stage": stage, "step": step, "steps": steps}))
        staging.replace(path)


def is_built(path: Path) -> bool:
    """Whether ``path`` holds a complete build (the metadata file is written last)."""
    return (path / METADATA_FILE).is_file()


def read_metadata(path: Path) -> dict[str, object]:
    """The training figures saved with a build."""
    return json.loads((path / METADATA_FILE).read_text())


def build_model(cfg: StyleLMConfig, tokenizer: PreTrainedTokenizerFast) -> CopyLlamaForCausalLM:
    """A freshly initialized copy-pointer Llama sized by ``cfg`` for ``tokenizer``'s vocabulary."""
    model_config = CopyLlamaConfig(
        copy_dim=cfg.copy_dim,
        answer_token_id=tokenizer.convert_tokens_to_ids(RESPONSE_TOKEN),
        progress_buckets=cfg.progress_buckets,
        long_sentence_words=LONG_SENTENCE_WORDS,
        min_piece_words=MIN_PIECE_WORDS,
        **token_tables(tokenizer, cfg.case_blind_copy),
        context_token_id=tokenizer.convert_tokens_to_ids(CONTEXT_TOKEN),
        cut_long_sentences=cfg.cut_long_sentences,
        cursor_reads_prompt=cfg.cursor_reads_prompt,
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_length,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(cfg.seed)
    return CopyLlamaForCausalLM(model_config)


def encode_batch(
    tokenizer: PreTrainedTokenizerFast,
    examples: list[Example],
    max_length: int,
    copy_weight: float = 1.0,
    frame_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Right-padded ids and attention mask, the labels (only the response and EOS are scored),
    and per-token loss weights: ``copy_weight`` on the tokens that state a key fact,
    ``frame_weight`` on the others between the first and the last of those (the frames, closing
    marks and emoji of the units after the first), else 1."""
    prompts = tokenizer([e.prompt for e in examples])["input_ids"]
    responses = tokenizer(
        [e.response for e in examples], add_special_tokens=False, return_offsets_mapping=True
    )
    rows = [
        (p + r + [tokenizer.eos_token_id])[:max_length]
        for p, r in zip(prompts, responses["input_ids"], strict=True)
    ]
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), IGNORE_INDEX)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    weights = torch.zeros((len(rows), width))
    for i, (row, prompt, example) in enumerate(zip(rows, prompts, examples, strict=True)):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        labels[i, len(prompt) : len(row)] = torch.tensor(row[len(prompt) :])
        weights[i, len(prompt) : len(row)] = 1.0
        spans = copy_spans(example)
        inner = (min(a for a, _ in spans), max(b for _, b in spans)) if spans else (0, 0)
        for j, (start, end) in enumerate(responses["offset_mapping"][i]):
            if len(prompt) + j >= len(row):
                break
            if any(start < b and end > a for a, b in spans):
                weights[i, len(prompt) + j] = copy_weight
            elif inner[0] <= start and end <= inner[1]:  # a frame between two copied units
                weights[i, len(prompt) + j] = frame_weight
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "weights": weights}


def response_loss(model: CopyLlamaForCausalLM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Weighted next-token cross-entropy of the mixture over the scored (response) tokens,
    normalized by the total weight; the output layer and the copy term run on those positions
    only."""
    targets = batch["labels"][:, 1:]
    scored = targets != IGNORE_INDEX
    select = torch.nn.functional.pad(scored, (0, 1))  # position t predicts token t + 1
    log_probs = model.target_log_probs(
        batch["input_ids"], batch["attention_mask"], select, targets[scored]
    )
    weights = batch["weights"][:, 1:][scored]
    return -(log_probs * weights).sum() / weights.sum()


def _learning_rate(cfg: StyleLMConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.learning_rate * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


def training_batches(cfg: StyleLMConfig, prose: list[str], chunk: int = 8) -> list[list[Example]]:
    """The training batches: each run of ``chunk`` batches is grouped by length (less padding),
    then put back in a seeded random order."""
    rng = random.Random(f"style-lm-batches:{cfg.seed}")
    batches: list[list[Example]] = []
    for start in range(0, cfg.steps * cfg.batch_size, chunk * cfg.batch_size):
        examples = sorted(
            (
                make_example(
                    cfg.seed,
                    i,
                    cfg.untagged_share,
                    cfg.partial_share,
                    cfg.length_weights,
                    prose,
                    cfg.prose_share,
                    cfg.prose_sentences,
                )
                for i in range(start, start + chunk * cfg.batch_size)
            ),
            key=lambda e: len(e.prompt) + len(e.response),
        )
        group = [examples[i : i + cfg.batch_size] for i in range(0, len(examples), cfg.batch_size)]
        rng.shuffle(group)
        batches.extend(group)
    return batches[: cfg.steps]


def train(
    cfg: StyleLMConfig, out_dir: Path, progress: bool = True, report_to: Path | None = None
) -> TrainReport:
    """Train tokenizer and model from scratch and save both, in HF format, to ``out_dir``
    (progress to a tqdm bar, and to the JSON file ``report_to`` when given)."""
    started = time.perf_counter()
    set_threads(cfg.threads)
    _report(report_to, "building the built-in style model: reading prose on this machine")
    prose = [p.text for p in prose_sources.collect(limit=cfg.prose_paragraphs)]
    batches = training_batches(cfg, prose if cfg.prose_share > 0 else [])
    examples = [e for batch in batches for e in batch][: cfg.tokenizer_examples]
    texts = [text for e in examples for text in (e.prompt, e.response)]
    tokenizer = train_tokenizer(texts, cfg.vocab_size)
    model = build_model(cfg, tokenizer)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay, betas=(0.9, 0.98)
    )
    model.train()
    loss_value = float("nan")
    bar = tqdm(range(cfg.steps), desc="style-lm", disable=not progress, mininterval=2.0)
    reported = 0.0
    for step in bar:
        if time.monotonic() - reported > 2.0:
            _report(report_to, "building the built-in style model", step, cfg.steps)
            reported = time.monotonic()
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(cfg, step)
        batch = encode_batch(
            tokenizer, batches[step], cfg.max_length, cfg.copy_weight, cfg.frame_weight
        )
        loss = response_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = float(loss.detach())
        bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    seconds = time.perf_counter() - started
    parameters = sum(p.numel() for p in model.parameters())
    return TrainReport(cfg.steps, seconds, loss_value, parameters)


def ensure_style_lm(
    cfg: StyleLMConfig | None = None,
    var: Path | None = None,
    retrain: bool = False,
    progress: bool = True,
) -> Path:
    """The cached style model's folder, trained first when missing (or when ``retrain``)."""
    target = style_lm_dir(var)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if is_built(target) and not retrain:
            return target
        cfg = cfg or StyleLMConfig()
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        report = train(cfg, staging, progress=progress, report_to=progress_file(var))
        metadata = {"version": VERSION, "config": asdict(cfg), "train": asdict(report)}
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        progress_file(var).unlink(missing_ok=True)
    return target


def artifact_name() -> str:
    """The name the built model is published under in the artifact store (one per version)."""
    return f"style-lm-{VERSION}"


def builtin_style_lm() -> Path:
    """This node's built-in style model, the same on every node that shares an artifact store:
    its own build when it has one (published for the others if none is yet), else the build
    another node published, else a new build (published)."""
    store = attune_config.artifact_store()
    local = style_lm_dir()
    if not is_built(local) and (ref := store.named(artifact_name())) is not None:
        return store.fetch(ref)
    path = ensure_style_lm()
    store.name(artifact_name(), store.put(path))
    return path


def folder_size(path: Path) -> int:
    """Bytes on disk of every file under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    """Train (or find cached) the style model and print where it is and how long it took."""
    parser = argparse.ArgumentParser(prog="python -m workers.modeling.style_lm")
    parser.add_argument("--retrain", action="store_true", help="train even when cached")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    path = ensure_style_lm(StyleLMConfig(threads=args.threads), retrain=args.retrain)
    store = attune_config.artifact_store()
    ref = store.name(artifact_name(), store.put(path))
    train_report = read_metadata(path)["train"]
    assert isinstance(train_report, dict)
    print(f"style model {VERSION}: {path}")
    print(f"  training time   {train_report['seconds']:.1f} s ({train_report['steps']} steps)")
    print(f"  parameters      {train_report['parameters']:,}")
    print(f"  size on disk    {folder_size(path) / 2**20:.1f} MiB")
    print(f"  in the store    {ref} (as {artifact_name()!r})")
    print(f"  this command    {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
