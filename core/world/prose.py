"""Restyling any English text: the renderer's styles applied to a text's own sentences.

The offline world's renderer writes a context's key facts; this module writes the sentences of any
text a person brings, in the same styles, with the same frames, greetings and closing questions,
and adds no content word of its own. ``units`` splits a text into sentences (a long one is cut at
its clause boundaries); ``render_prose`` keeps the first ones (``short``: 2, ``medium``: 4,
``long``: all up to :data:`MAX_UNITS`) and frames each in the style's tone and person. The built-in
style model is trained on these renderings beside the world's own, so it restyles any paragraph.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.text import SENTENCE_END, split_sentences, word_set
from core.world.renderer import FRAMES, GREETINGS, QUESTIONS, TASKS
from core.world.styles import full_style

PROSE_NOUN = "text"
PROSE_EMOJIS: tuple[str, ...] = ("📌", "✨", "👉", "💡", "✅", "📣")
PROSE_SUBJECT = "Key points"
LENGTH_UNITS: dict[str, int] = {"short": 2, "medium": 4}
MAX_UNITS = 12
LONG_SENTENCE_WORDS = 22
MIN_PIECE_WORDS = 5

_CLAUSE_BREAK = re.compile(r";\s+|,\s+(?:and|but)\s+|\s+[—–]\s+")
_EMOJI = re.compile("[\U0001f300-\U0001faff\u2300-\u23ff\u2600-\u27bf\u2b50\u2b55]\ufe0f?")
# Common first words that a frame puts in lower case ("In addition, the …"); any other first word
# keeps its capital (a name, or a word the model would have to respell rather than copy).
LOWER_STARTS = word_set(
    "a an the this that these those it its they their there we our he she his her some many most "
    "each every all both several few in on at for with after before during as by from to of when "
    "while if once since until under over about one two three more new last next you your any "
    "such what which who how where why here now then today thus instead other another only even "
    "no not"
)
# Connectives a frame replaces ("But such a project …" becomes "In addition, such a project …").
_LEADING_CONNECTIVE = re.compile(
    r"^(?:And|But|So|Also|Plus|Besides|However|Finally|Furthermore|Moreover|Additionally"
    r"|In addition|Still|Yet)\b,?\s+"
)


def title_and_body(text: str) -> tuple[str, str]:
    """A first line that reads as a heading (short, no sentence end) and the rest of the text."""
    lines = text.strip().split("\n", 1)
    first = lines[0].strip()
    if len(lines) == 2 and first and not SENTENCE_END.search(first) and len(first.split()) <= 12:
        return first, lines[1]
    return "", text


def _pieces(sentence: str) -> list[str]:
    """A long sentence cut at its clause boundaries into pieces of a few words each; a short one
    as it is."""
    if len(sentence.split()) <= LONG_SENTENCE_WORDS:
        return [sentence]
    pieces, start = [], 0
    for match in _CLAUSE_BREAK.finditer(sentence):
        head = sentence[start : match.start()]
        if len(head.split()) >= MIN_PIECE_WORDS and len(sentence[match.end() :].split()) >= (
            MIN_PIECE_WORDS
        ):
            pieces.append(head)
            start = match.end()
    pieces.append(sentence[start:])
    return [p.strip() for p in pieces if p.strip()]


def units(text: str) -> list[str]:
    """The text's content units in order: its sentences (a long one cut at clause boundaries),
    without questions and emoji; list items count as sentences."""
    _, body = title_and_body(text)
    found: list[str] = []
    for line in body.splitlines():
        line = _EMOJI.sub("", re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", line))
        for sentence in split_sentences(line):
            if sentence.endswith("?") or len(sentence.split()) < 2:
                continue
            found.extend(_pieces(sentence))
    return found


def clause(unit: str) -> str:
    """A unit as a clause a frame can hold: no closing mark, no leading connective, and a common
    first word ("The", "In", "It" …) in lower case."""
    text = re.sub(r"""[.!?;:,]+(["'”’)\]]*)$""", r"\1", unit.strip())
    text = _LEADING_CONNECTIVE.sub("", text) or text
    first = text.split(" ", 1)[0]
    if first.lower() in LOWER_STARTS and first != "I":
        text = text[0].lower() + text[1:]
    return text


def kept_units(text: str, style: Mapping[str, str]) -> list[str]:
    """The units a style keeps: the first ones, as many as its length allows."""
    length = full_style(style)["length"]
    return units(text)[: LENGTH_UNITS.get(length, MAX_UNITS)]


def _frame(index: int, count: int, length: str) -> int:
    """Which of the six frames unit ``index`` of ``count`` uses: in order, and for ``long`` the
    closing frame ("Finally, …") on the last of three or more, as the detectors expect."""
    if length == "long" and count >= 3 and index == count - 1:
        return 5
    return index if index < 5 else 1 + (index - 1) % 4


def render_prose(text: str, task: str, style: Mapping[str, str] | None = None) -> str:
    """Write ``text``'s own sentences for ``task`` in ``style``, like the world's renderer."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    full = full_style(style)
    frames = FRAMES[(full["tone"], full["person"])]
    kept = kept_units(text, full)
    sentences = []
    for index, unit in enumerate(kept):
        sentence = frames[_frame(index, len(kept), full["length"])].format(
            noun=PROSE_NOUN, c=clause(unit)
        )
        if full["emoji"] == "yes":
            sentence = f"{sentence} {PROSE_EMOJIS[index % len(PROSE_EMOJIS)]}"
        sentences.append(sentence)
    if full["format"] == "bullets":
        body = "\n".join(f"- {s}" for s in sentences)
    else:
        body = " ".join(sentences)
    greeting, closing = GREETINGS[(task, full["tone"])]
    title, _ = title_and_body(text)
    blocks = [f"Subject: {title or PROSE_SUBJECT}"] if task == "email" else []
    if full["greeting"] == "yes":
        blocks.append(greeting)
    blocks.append(body)
    if full["question"] == "yes":
        blocks.append(QUESTIONS[full["tone"]].format(noun=PROSE_NOUN))
    if full["greeting"] == "yes":
        blocks.append(closing)
    return "\n\n".join(blocks)
