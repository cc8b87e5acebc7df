"""Building, caching and loading the style model (a tiny one, trained for two steps)."""

from __future__ import annotations

import json
import random
import shutil
import threading
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from core.text import split_sentences
from core.world.prose import LOWER_STARTS
from core.world.renderer import kept_facts
from tests.support.style_models import TINY
from workers.modeling import style_lm
from workers.modeling.loader import load_base_model
from workers.modeling.style_corpus import heldout_example, make_example, prose_context
from workers.modeling.style_lm import (
    IGNORE_INDEX,
    TrainReport,
    encode_batch,
    ensure_style_lm,
    is_built,
    read_metadata,
    response_loss,
    style_lm_dir,
)


def test_corpus_is_deterministic_and_mixes_tagged_and_untagged_prompts() -> None:
    assert make_example(0, 5) == make_example(0, 5)
    examples = [make_example(0, i) for i in range(300)]
    untagged = [e for e in examples if e.tags is None]
    assert 10 < len(untagged) < 60
    assert all(e.prompt.endswith(f"<task={e.task}><response>") for e in untagged)
    assert all("<length=" not in e.prompt for e in untagged)
    assert heldout_example(3) == heldout_example(3)
    assert heldout_example(3).context.seed % 2 == 1
    assert all(e.context.seed % 2 == 0 for e in examples)


def test_build_is_cached_with_its_version_and_figures(tiny_var: Path) -> None:
    path = style_lm_dir(tiny_var)
    assert path.name == f"style-lm-{style_lm.VERSION}"
    metadata = read_metadata(path)
    assert metadata["version"] == style_lm.VERSION
    assert metadata["config"] == json.loads(json.dumps(asdict(TINY)))
    assert ensure_style_lm(TINY, var=tiny_var) == path  # cached: returns at once


def test_saved_tokenizer_and_model_load_with_auto_classes(tiny_var: Path) -> None:
    path = style_lm_dir(tiny_var)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.model_type == "attune_copy_llama"
    assert model.config.vocab_size == len(tokenizer)
    example = heldout_example(0)
    ids = tokenizer(example.prompt)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert "<response>" in tokenizer.convert_ids_to_tokens(ids)
    text = example.response
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_the_model_knows_the_sentence_ends_and_lower_case_twins_of_its_tokens(
    tiny_var: Path,
) -> None:
    path = style_lm_dir(tiny_var)
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = AutoModelForCausalLM.from_pretrained(path).config
    assert tokenizer.convert_tokens_to_ids(".") in config.boundary_token_ids
    assert tokenizer.convert_tokens_to_ids(",") not in config.boundary_token_ids
    assert config.special_token_ids == sorted(
        set(tokenizer.all_special_ids) - {tokenizer.eos_token_id}
    )
    assert config.answer_token_id in config.special_token_ids
    assert config.context_token_id == tokenizer.convert_tokens_to_ids("<context>")
    twins = config.lower_token_ids
    assert len(twins) == len(tokenizer)
    pairs = {tokenizer.decode([t]): tokenizer.decode([w]) for t, w in enumerate(twins) if t != w}
    assert pairs and all(upper.lower() == lower for upper, lower in pairs.items())
    assert all(upper.strip().lower() in LOWER_STARTS for upper in pairs)  # "The", not "Paris"
    closing = {tokenizer.decode([t]).strip() for t in config.closing_token_ids}
    assert "." in closing and closing <= {"".join(c) for c in closing if set(c) <= set(".!?")}
    breaks, markers = config.line_break_token_ids, config.list_marker_token_ids
    ids = tokenizer("- a\n- b", add_special_tokens=False)["input_ids"]
    assert [t for t in ids if t in breaks] == [t for t in ids if "\n" in tokenizer.decode([t])]
    assert [t for t in ids if t in markers] == [t for t in ids if tokenizer.decode([t]) == "-"]
    assert len([t for t in ids if t in markers]) == 2
    assert all("\n" in tokenizer.decode([t]) for t in breaks)


def test_a_build_saved_without_the_decoding_tables_gets_them_at_load(
    tiny_var: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old-build"
    shutil.copytree(style_lm_dir(tiny_var), old)
    saved = json.loads((old / "config.json").read_text())
    names = ("line_break_token_ids", "list_marker_token_ids", "special_token_ids")
    expected = {name: saved.pop(name) for name in names}
    (old / "config.json").write_text(json.dumps(saved))
    model, _ = load_base_model(str(old), device="cpu")
    assert all(expected.values())
    assert {name: getattr(model.config, name) for name in names} == expected


def test_two_processes_do_not_build_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def fake_train(
        cfg: style_lm.StyleLMConfig,
        out_dir: Path,
        progress: bool = True,
        report_to: Path | None = None,
    ) -> TrainReport:
        calls.append(out_dir)
        out_dir.mkdir(parents=True)
        (out_dir / "model.safetensors").write_bytes(b"")
        return TrainReport(steps=0, seconds=0.0, final_loss=0.0, parameters=0)

    monkeypatch.setattr(style_lm, "train", fake_train)
    threads = [threading.Thread(target=ensure_style_lm, kwargs={"var": tmp_path}) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert style_lm.is_built(style_lm_dir(tmp_path))
    ensure_style_lm(var=tmp_path, retrain=True)
    assert len(calls) == 2


def test_batches_score_only_the_response_and_weigh_the_facts(tiny_var: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(style_lm_dir(tiny_var))
    examples = [make_example(0, i) for i in range(4)]
    batch = encode_batch(tokenizer, examples, max_length=512, copy_weight=4.0)
    for row, example in enumerate(examples):
        ids = batch["input_ids"][row]
        scored = batch["labels"][row] != IGNORE_INDEX
        prompt_length = len(tokenizer(example.prompt)["input_ids"])
        assert not scored[:prompt_length].any()
        assert tokenizer.decode(ids[scored]) == example.response + tokenizer.eos_token
        heavy = tokenizer.decode(ids[batch["weights"][row] == 4.0])
        for fact in kept_facts(example.context, example.style):
            assert fact.value.replace(" ", "") in heavy.replace(" ", "")


def test_batches_weigh_the_frames_between_copied_units(tiny_var: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(style_lm_dir(tiny_var))
    examples = [make_example(0, i) for i in range(6)]
    batch = encode_batch(tokenizer, examples, 512, copy_weight=2.0, frame_weight=3.0)
    for row, example in enumerate(examples):
        ids, weights = batch["input_ids"][row], batch["weights"][row]
        framed = tokenizer.decode(ids[weights == 3.0])
        facts = kept_facts(example.context, example.style)
        if len(facts) >= 2:  # the second unit's frame lies between the first two facts
            between = example.response.split(facts[0].value, 1)[1].split(facts[1].value, 1)[0]
            assert between.strip(" .!") and between.strip() in framed
        first = len(tokenizer(example.prompt)["input_ids"])
        assert weights[first] == 1.0  # what comes before the first unit keeps weight 1


def test_sentence_runs_spread_the_prose_contexts_lengths() -> None:
    paragraphs = [" ".join(f"Sentence {p} {i} is here." for i in range(3)) for p in range(50)]
    counts = set()
    for seed in range(200):
        text = prose_context(random.Random(seed), paragraphs, sentences=(2, 7))
        counts.add(len(split_sentences(text)))
    assert counts == {2, 3, 4, 5, 6, 7}  # runs cross paragraphs and cut the last one
    assert len(split_sentences(prose_context(random.Random(0), paragraphs))) % 3 == 0


def test_response_loss_is_the_weighted_cross_entropy(tiny_var: Path) -> None:
    path = style_lm_dir(tiny_var)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    batch = encode_batch(tokenizer, [make_example(0, i) for i in range(3)], 512, copy_weight=2.0)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1),
        batch["labels"][:, 1:].flatten(),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    weights = batch["weights"][:, 1:].flatten()
    expected = (losses * weights).sum() / weights.sum()
    assert torch.allclose(response_loss(model, batch), expected, atol=1e-5)


def test_a_node_without_a_build_loads_the_one_another_node_published(
    tiny_var: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core import config
    from workers.modeling.style_lm import artifact_name, builtin_style_lm

    monkeypatch.setenv("ATTUNE_ARTIFACT_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("ATTUNE_VAR_DIR", str(tiny_var))  # the node that built it
    built = builtin_style_lm()
    assert built == style_lm_dir(tiny_var)
    ref = config.artifact_store().named(artifact_name())
    assert ref is not None  # published for the others

    monkeypatch.setenv("ATTUNE_VAR_DIR", str(tmp_path / "other-node"))  # no build of its own
    fetched = builtin_style_lm()
    assert fetched.name == ref.removeprefix("sha256:") and not is_built(style_lm_dir())
    assert (fetched / "model.safetensors").read_bytes() == (
        built / "model.safetensors"
    ).read_bytes()
