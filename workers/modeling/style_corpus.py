"""The style model's corpus and tokenizer: (prompt, response) pairs rendered from the world and
from real prose.

Torch-free. Example ``i`` of a corpus seed is a pure function of ``(seed, i)`` and the prose
paragraphs given: a context (a world source's, or a run of real paragraphs restyled by
``core.world.prose``), a random task and style, and the tags the prompt shows. Most prompts show
every tag; some show a few (the attributes they leave out take their default value) and some show
none, so that the model also writes something sensible, in the default style, when no tag is given.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from core.prompting import build_prompt, special_tokens
from core.text import split_sentences
from core.world.prose import clause, kept_units, render_prose
from core.world.renderer import TASKS, kept_facts, render
from core.world.sources import SOURCE_NAMES, Context, make_context
from core.world.styles import Style, attribute, default_style, random_style

PAD, BOS, EOS = "<pad>", "<s>", "</s>"


@dataclass(frozen=True)
class Example:
    """One corpus item: the context (a world context, or ``None`` for real prose), task, the style
    rendered, the tags shown, and the texts (``context_text`` is what the prompt holds)."""

    context: Context | None
    task: str
    style: Style
    tags: Style | None
    prompt: str
    response: str
    context_text: str = ""


def _context(rng: random.Random, heldout: bool, source: str | None = None) -> Context:
    """A context of a random source (or of ``source``): even seeds are for training, odd ones
    held out."""
    drawn = rng.choice(SOURCE_NAMES)  # drawn even when given: the draws after it stay the same
    return make_context(source or drawn, 2 * rng.randrange(2**30) + int(heldout))


def _random_style(rng: random.Random, length_weights: Sequence[float]) -> Style:
    """A random full style whose length is drawn with ``length_weights``."""
    style = random_style(rng)
    style["length"] = rng.choices(attribute("length").values, weights=length_weights)[0]
    return style


def prose_context(
    rng: random.Random, paragraphs: Sequence[str], sentences: tuple[int, int] | None = None
) -> str:
    """A context of real prose: one to three consecutive paragraphs, now and then as one line
    each; or, with ``sentences`` (low, high), a run of that many sentences drawn evenly (from
    consecutive paragraphs, the last one cut at a sentence end), so that how much of the text is
    left, not how many units the world's ``long`` answers have, tells where an answer ends."""
    start = rng.randrange(len(paragraphs))
    if sentences is None:
        count = rng.choices((1, 2, 3), weights=(0.5, 0.3, 0.2))[0]
        chosen = list(paragraphs[start : start + count])
    else:
        wanted, chosen = rng.randint(*sentences), []
        for paragraph in paragraphs[start : start + wanted]:
            taken = split_sentences(paragraph)[:wanted]
            chosen.append(" ".join(taken))
            wanted -= len(taken)
            if wanted <= 0:
                break
    return ("\n" if rng.random() < 0.3 else " ").join(chosen)


def _prose_example(
    rng: random.Random,
    paragraphs: Sequence[str],
    length_weights: Sequence[float],
    sentences: tuple[int, int] | None,
) -> Example:
    text = prose_context(rng, paragraphs, sentences)
    task = rng.choice(TASKS)
    style = _random_style(rng, length_weights)
    tags = dict(style) if rng.random() < 0.8 else None
    if tags is None:
        style = default_style()
    prompt = build_prompt(task, text, tags)
    return Example(None, task, style, tags, prompt, render_prose(text, task, style), text)


def make_example(
    seed: int,
    index: int,
    untagged_share: float = 0.1,
    partial_share: float = 0.2,
    length_weights: Sequence[float] = (1.0, 1.0, 1.0),
    prose: Sequence[str] = (),
    prose_share: float = 0.0,
    prose_sentences: tuple[int, int] | None = None,
) -> Example:
    """Example ``index`` of the corpus ``seed``: real ``prose`` with probability ``prose_share``
    (its contexts as :func:`prose_context` draws them with ``prose_sentences``), else a world
    context."""
    rng = random.Random(f"style-corpus:{seed}:{index}")
    if prose and rng.random() < prose_share:
        return _prose_example(rng, prose, length_weights, prose_sentences)
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
    return Example(context, task, style, tags, prompt, render(context, task, style), context.text)


def copy_spans(example: Example) -> list[tuple[int, int]]:
    """Character spans of the response that are copied from the context: the kept facts' key
    values, or, for real prose, every kept sentence."""
    if example.context is None:
        values = [clause(u) for u in kept_units(example.context_text, example.style)]
    else:
        values = [fact.value for fact in kept_facts(example.context, example.style)]
    spans = []
    for value in values:
        start = example.response.find(value)
        while start >= 0:
            spans.append((start, start + len(value)))
            start = example.response.find(value, start + 1)
    return spans


def heldout_example(
    index: int, seed: int = 0, style: Style | None = None, source: str | None = None
) -> Example:
    """A fully tagged example on a held-out context (an odd seed: training only sees even ones)
    of a random source or ``source``, in a random full style or the one given."""
    rng = random.Random(f"style-heldout:{seed}:{index}")
    context = _context(rng, heldout=True, source=source)
    task = rng.choice(TASKS)
    drawn = random_style(rng)
    style = dict(style) if style is not None else drawn
    prompt = build_prompt(task, context.text, style)
    return Example(
        context, task, style, dict(style), prompt, render(context, task, style), context.text
    )


def heldout_prose_example(index: int, paragraphs: Sequence[str], seed: int = 0) -> Example:
    """A fully tagged example on held-out real prose (paragraphs the model never saw)."""
    rng = random.Random(f"style-heldout-prose:{seed}:{index}")
    text = paragraphs[index % len(paragraphs)]
    task = rng.choice(TASKS)
    style = random_style(rng)
    prompt = build_prompt(task, text, style)
    return Example(None, task, style, dict(style), prompt, render_prose(text, task, style), text)


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
