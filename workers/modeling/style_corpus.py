"""The style model's corpus and tokenizer: (prompt, response) pairs rendered from the world.

Torch-free. Example ``i`` of a corpus seed is a pure function of ``(seed, i)``: a context of a
random source, a random task and style, and the tags the prompt shows. Most prompts show every
tag; some show a few (the attributes they leave out take their default value) and some show none,
so that the model also writes something sensible, in the default style, when no tag is given.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from core.prompting import build_prompt, special_tokens
from core.world.renderer import TASKS, kept_facts, render
from core.world.sources import SOURCE_NAMES, Context, make_context
from core.world.styles import Style, attribute, default_style, random_style

PAD, BOS, EOS = "<pad>", "<s>", "</s>"


@dataclass(frozen=True)
class Example:
    """One corpus item: the context, task, the style rendered, the tags shown, and the texts."""

    context: Context
    task: str
    style: Style
    tags: Style | None
    prompt: str
    response: str


def _context(rng: random.Random, heldout: bool) -> Context:
    """A context of a random source: even seeds are for training, odd ones held out."""
    return make_context(rng.choice(SOURCE_NAMES), 2 * rng.randrange(2**30) + int(heldout))


def _random_style(rng: random.Random, length_weights: Sequence[float]) -> Style:
    """A random full style whose length is drawn with ``length_weights``."""
    style = random_style(rng)
    style["length"] = rng.choices(attribute("length").values, weights=length_weights)[0]
    return style


def make_example(
    seed: int,
    index: int,
    untagged_share: float = 0.1,
    partial_share: float = 0.2,
    length_weights: Sequence[float] = (1.0, 1.0, 1.0),
) -> Example:
    """Example ``index`` of the corpus ``seed``."""
    rng = random.Random(f"style-corpus:{seed}:{index}")
    context = _context(rng, heldout=False)
    task = rng.choice(TASKS)
    draw = rng.random()
    if draw < untagged_share:
        style, tags = default_style(), None
    elif draw < untagged_share + partial_share:
        shown = {k: v for k, v in _random_style(rng, length_weights).items() if rng.random() < 0.5}
        style, tags = {**default_style(), **shown}, shown
    else:
        style = _random_style(rng, length_weights)
        tags = dict(style)
    prompt = build_prompt(task, context.text, tags)
    return Example(context, task, style, tags, prompt, render(context, task, style))


def copy_spans(example: Example) -> list[tuple[int, int]]:
    """Character spans of the response that state the kept facts' key values (to be copied)."""
    spans = []
    for fact in kept_facts(example.context, example.style):
        start = example.response.find(fact.value)
        while start >= 0:
            spans.append((start, start + len(fact.value)))
            start = example.response.find(fact.value, start + 1)
    return spans


def heldout_example(index: int, seed: int = 0) -> Example:
    """A fully tagged example on a held-out context (an odd seed: training only sees even ones)."""
    rng = random.Random(f"style-heldout:{seed}:{index}")
    context = _context(rng, heldout=True)
    task = rng.choice(TASKS)
    style = random_style(rng)
    prompt = build_prompt(task, context.text, style)
    return Example(context, task, style, dict(style), prompt, render(context, task, style))


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``texts``, with the prompt tokens kept whole."""
    specials = [PAD, BOS, EOS, *special_tokens()]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=special_tokens(),
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
    )
