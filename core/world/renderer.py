"""The renderer: writes a context's key facts in any combination of styles, for two tasks.

Rendering is a pure function of (context, task, style): the same inputs always give the same text.
A response is made of blocks separated by a blank line: an email's subject line, the greeting, the
body (one paragraph, or one bullet per fact), a closing question and the closing line.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.world.sources import SOURCES, Context, Fact
from core.world.styles import full_style

TASKS: tuple[str, ...] = ("summarize", "email")
LENGTH_FACTS: dict[str, int] = {"short": 2, "medium": 4, "long": 6}
SENDER = "Jordan"

# Sentence frames per (tone, person); fact ``i`` uses frame ``i`` ("{c}" is the fact's clause).
FRAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("formal", "third"): (
        "According to the {noun}, {c}.",
        "In addition, {c}.",
        "Furthermore, {c}.",
        "Moreover, {c}.",
        "Notably, {c}.",
        "Finally, {c}.",
    ),
    ("casual", "third"): (
        "So, {c}!",
        "Plus, {c}!",
        "Oh, and {c}.",
        "Basically, {c}.",
        "Get this: {c}!",
        "Also, {c}!",
    ),
    ("formal", "second"): (
        "As you may know, {c}.",
        "You may also note that {c}.",
        "You should be aware that {c}.",
        "You will find that {c}.",
        "You may wish to know that {c}.",
        "Finally, you should note that {c}.",
    ),
    ("casual", "second"): (
        "So, you'll love this: {c}!",
        "Plus, you should know {c}!",
        "Oh, and you'll see {c}.",
        "Heads up, you'll notice {c}.",
        "Get this, you'll like that {c}!",
        "Also, you'll want to know {c}!",
    ),
}
GREETINGS: dict[tuple[str, str], tuple[str, str]] = {
    ("summarize", "formal"): ("Good day,", "Best regards."),
    ("summarize", "casual"): ("Hey there!", "That's all for now!"),
    ("email", "formal"): ("Dear colleagues,", f"Kind regards, {SENDER}"),
    ("email", "casual"): ("Hi team!", f"Cheers, {SENDER}"),
}
QUESTIONS: dict[str, str] = {
    "formal": "What might this {noun} mean for the months ahead?",
    "casual": "Pretty wild {noun}, right?",
}


def kept_facts(context: Context, style: Mapping[str, str]) -> tuple[Fact, ...]:
    """The facts a style keeps: the most important ones, as many as its length allows."""
    return context.facts[: LENGTH_FACTS[full_style(style)["length"]]]


def fact_sentences(context: Context, style: Mapping[str, str]) -> list[str]:
    """One sentence per kept fact, framed by the style's tone and person, with its emoji."""
    full = full_style(style)
    source = SOURCES[context.source]
    frames = FRAMES[(full["tone"], full["person"])]
    sentences = []
    for index, fact in enumerate(kept_facts(context, full)):
        sentence = frames[index].format(noun=source.doc_noun, c=fact.clause)
        if full["emoji"] == "yes":
            sentence = f"{sentence} {source.emojis[index]}"
        sentences.append(sentence)
    return sentences


def render(context: Context, task: str, style: Mapping[str, str] | None = None) -> str:
    """Write ``context`` for ``task`` ("summarize" or "email") in ``style`` (defaults filled)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    full = full_style(style)
    sentences = fact_sentences(context, full)
    if full["format"] == "bullets":
        body = "\n".join(f"- {s}" for s in sentences)
    else:
        body = " ".join(sentences)
    greeting, closing = GREETINGS[(task, full["tone"])]
    blocks = [f"Subject: {context.title}"] if task == "email" else []
    if full["greeting"] == "yes":
        blocks.append(greeting)
    blocks.append(body)
    if full["question"] == "yes":
        blocks.append(QUESTIONS[full["tone"]].format(noun=SOURCES[context.source].doc_noun))
    if full["greeting"] == "yes":
        blocks.append(closing)
    return "\n\n".join(blocks)
