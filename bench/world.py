"""Offline style world and real prose: detector agreement, the style model's attribute match,
fact retention, and how faithfully it restyles real paragraphs it never saw; its size.

``python -m bench world [--samples 1000] [--contexts 200] [--prose 200] [--retrain]
[--threads 2]`` prints the detectors' agreement with the renderer's labels per attribute, then
builds (or finds cached) the style model and prints its training time, parameter count and size
on disk; on held-out world contexts, how often its outputs have the style their tags ask for and
how many of the key facts (those the asked-for length keeps) they keep; once per full style and
source (192 x 6), whether a user who wants exactly that style would edit the answer; the same for
the default population's users asked as the oracle of ``bench cipher`` asks (their partial
preferences, the rest left to the model) on held-out contexts of every source; and on real
paragraphs (``bench.restyle``: held-out prose of this machine, and the committed real
paragraphs) its faithfulness, coverage, loops and attribute match.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from bench import restyle
from core import config as attune_config
from core.world.detectors import detect_style, fact_retention, style_matches
from core.world.renderer import TASKS, kept_facts, render
from core.world.simulated_users import SimulatedUser, load_population
from core.world.sources import SOURCE_NAMES, sample_context
from core.world.styles import ATTRIBUTE_NAMES, ATTRIBUTES, default_style, random_style
from workers.modeling.generation import GenerationRequest, generate_texts
from workers.modeling.loader import load_base_model
from workers.modeling.style_corpus import Example, heldout_example
from workers.modeling.style_lm import (
    VERSION,
    StyleLMConfig,
    ensure_style_lm,
    folder_size,
    is_built,
    read_metadata,
    set_threads,
    style_lm_dir,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class StyleScores:
    """How well texts follow their requested styles and keep their contexts' key facts."""

    per_attribute: dict[str, float]
    all_attributes: float
    fact_retention: float

    @property
    def mean(self) -> float:
        return sum(self.per_attribute.values()) / len(self.per_attribute)


def detector_agreement(samples: int, seed: int) -> dict[str, float]:
    """Per attribute, the share of random renderings whose detected value is the rendered one."""
    rng = random.Random(f"bench-detectors:{seed}")
    hits = dict.fromkeys(ATTRIBUTE_NAMES, 0)
    for _ in range(samples):
        style = random_style(rng)
        text = render(sample_context(rng), rng.choice(TASKS), style)
        for name, ok in style_matches(text, style).items():
            hits[name] += ok
    return {name: hits[name] / samples for name in ATTRIBUTE_NAMES}


def score_outputs(examples: Sequence[Example], outputs: Sequence[str]) -> StyleScores:
    """Attribute match against each example's style, and retention of the facts it keeps."""
    hits = dict.fromkeys(ATTRIBUTE_NAMES, 0)
    complete = 0
    retained = 0.0
    for example, output in zip(examples, outputs, strict=True):
        detected = detect_style(output)
        matches = [detected[name] == example.style[name] for name in ATTRIBUTE_NAMES]
        for name, ok in zip(ATTRIBUTE_NAMES, matches, strict=True):
            hits[name] += ok
        complete += all(matches)
        retained += fact_retention(output, kept_facts(example.context, example.style))
    n = len(examples)
    return StyleScores({k: v / n for k, v in hits.items()}, complete / n, retained / n)


def every_style(seed: int) -> list[Example]:
    """One held-out example per full style (all 192) and source, each on its own context and
    task: a mean over random styles can hide a style the model always gets wrong, on one source
    or on all."""
    styles = list(itertools.product(*(a.values for a in ATTRIBUTES)))
    return [
        heldout_example(
            10_000 + i * len(SOURCE_NAMES) + k,
            seed,
            dict(zip(ATTRIBUTE_NAMES, values, strict=True)),
            source,
        )
        for i, values in enumerate(styles)
        for k, source in enumerate(SOURCE_NAMES)
    ]


def needs_edit(example: Example, output: str) -> bool:
    """Whether a simulated user who wants exactly the example's style would edit the output (an
    attribute off, or a fact that style keeps missing)."""
    assert example.context is not None
    user = SimulatedUser("every-style", preferences={example.context.source: example.style})
    return not user.is_satisfied(example.context, output)


def population_cells(seed: int, per_source: int = 8) -> list[tuple[SimulatedUser, Example]]:
    """The default population's users with their own (partial) preference as the tags, as the
    oracle of ``bench cipher`` asks, on ``per_source`` held-out contexts of every source (the
    tasks in turn)."""
    cells = []
    for u, user in enumerate(load_population()):
        for k, source in enumerate(SOURCE_NAMES):
            for j in range(per_source):
                index = 50_000 + (u * len(SOURCE_NAMES) + k) * per_source + j
                example = heldout_example(index, seed, source=source)
                tags = user.latent_style(source) or None
                style = {**default_style(), **(tags or {})}
                task = TASKS[j % len(TASKS)]
                cells.append((user, replace(example, task=task, style=style, tags=tags)))
    return cells


def _print_scores(title: str, scores: StyleScores) -> None:
    print(title)
    for name, value in scores.per_attribute.items():
        print(f"  {name:<10} {value:7.1%}")
    print(
        f"  {'mean':<10} {scores.mean:7.1%}   (all attributes at once: {scores.all_attributes:.1%})"
    )
    print(f"  fact retention (key facts the style keeps): {scores.fact_retention:.1%}")


def _print_build(path: Path, cached: bool) -> None:
    train = read_metadata(path)["train"]
    assert isinstance(train, dict)
    print(f"\nstyle model {attune_config.STYLE_LM_NAME} {VERSION} at {path}")
    build = " (cached build)" if cached else ""
    print(f"  training time    {train['seconds']:.1f} s, {train['steps']} steps{build}")
    print(f"  parameters       {train['parameters']:,}")
    print(f"  size on disk     {folder_size(path) / 2**20:.1f} MiB")


def _generate(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example]
) -> list[str]:
    """Greedy outputs for the examples' prompts (with the tags each example shows)."""
    requests = [GenerationRequest(e.task, e.context_text, e.tags) for e in examples]
    return generate_texts(model, tokenizer, requests, max_new_tokens=640, batch_size=16)


def main(argv: list[str]) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m bench world", description=__doc__)
    parser.add_argument("--samples", type=int, default=1000, help="renderings for the detectors")
    parser.add_argument("--contexts", type=int, default=200, help="held-out contexts to generate")
    parser.add_argument("--prose", type=int, default=200, help="real paragraphs' outputs per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain", action="store_true", help="retrain the cached style model")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args(argv)
    set_threads(args.threads)

    agreement = detector_agreement(args.samples, args.seed)
    print(f"detector agreement with the renderer's labels ({args.samples} samples)")
    for name, value in agreement.items():
        print(f"  {name:<10} {value:7.1%}")

    cached = is_built(style_lm_dir()) and not args.retrain
    path = ensure_style_lm(StyleLMConfig(threads=args.threads), retrain=args.retrain)
    _print_build(path, cached)

    model, tokenizer = load_base_model(attune_config.STYLE_LM_NAME, device="cpu")
    tagged = [heldout_example(i, args.seed) for i in range(args.contexts)]
    started = time.perf_counter()
    scores = score_outputs(tagged, _generate(model, tokenizer, tagged))
    seconds = time.perf_counter() - started
    _print_scores(f"\nheld-out contexts, conditioned on all tags ({len(tagged)})", scores)
    untagged = [
        Example(e.context, e.task, default_style(), None, "", "", e.context_text)
        for e in tagged[: max(1, args.contexts // 4)]
    ]
    _print_scores(
        f"\nheld-out contexts, no tags: the default style expected ({len(untagged)})",
        score_outputs(untagged, _generate(model, tokenizer, untagged)),
    )
    print(f"\ngeneration: {seconds:.1f} s for {len(tagged)} tagged outputs (greedy, CPU)")
    cells = every_style(args.seed)
    edited = [
        (e.context.source, e.style["length"])
        for e, output in zip(cells, _generate(model, tokenizer, cells), strict=True)
        if e.context is not None and needs_edit(e, output)
    ]
    print(
        f"\nevery full style on every source ({len(cells)}): "
        f"{len(cells) - len(edited)} need no edit"
    )
    for (source, length), count in sorted(Counter(edited).items()):
        print(f"  need an edit: {count} on {source} asked {length}")
    people = population_cells(args.seed)
    answers = _generate(model, tokenizer, [e for _, e in people])
    costs, edits = Counter(), 0
    for (user, e), output in zip(people, answers, strict=True):
        assert e.context is not None
        response = user.respond(e.context, e.task, output)
        costs[(user.user_id, e.context.source)] += response.cost
        edits += not response.accepted
    print(
        f"\nthe default population's preferences, as the oracle asks ({len(people)}): "
        f"{len(people) - edits} need no edit"
    )
    for (user_id, source), cost in sorted(costs.items()):
        if cost:
            print(f"  {user_id} on {source}: {cost} words edited")

    misses = []
    for title, paragraphs in (
        ("held-out prose of this machine", restyle.heldout_paragraphs()),
        ("committed real paragraphs (tests/data/real_paragraphs.json)", restyle.real_paragraphs()),
    ):
        examples = restyle.examples(paragraphs, args.prose, args.seed)
        started = time.perf_counter()
        prose_scores = restyle.score(examples, _generate(model, tokenizer, examples))
        seconds = time.perf_counter() - started
        restyle.print_scores(
            f"\nreal paragraphs never trained on: {title} ({len(paragraphs)} paragraphs, "
            f"{len(examples)} outputs, {seconds:.1f} s)",
            prose_scores,
            restyle.score(examples, [e.response for e in examples]),
        )
        misses += [f"{name} ({title.split(' (')[0]})" for name in prose_scores.misses()]
    ok = scores.mean >= 0.99 and scores.fact_retention >= 0.9 and min(agreement.values()) >= 0.95
    ok = ok and len(edited) <= len(cells) // 100 and edits <= len(people) // 100
    verdict = "met" if ok and not misses else "MISSED: " + ", ".join(misses or ["world"])
    print(
        "\ntargets (detectors >= 95%; world: match >= 99%, retention >= 90%, at most 1% of the "
        "full styles and of the population's answers need an edit; real prose: "
        "faithfulness >= 98%, coverage short >= 90% and long >= 85%, no loops >= 99%, "
        f"every attribute >= 95%): {verdict}"
    )
    return 0 if ok and not misses else 1
