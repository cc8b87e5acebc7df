"""How faithfully a restyled text keeps to its input: invented words, coverage, loops.

Torch-free. A *content word* is a word (lower case, without the punctuation around it) that is
neither a common function word nor a word of the styles' own templates (the frames, greetings,
closing questions and subject lines the renderers add). ``faithfulness`` is the share of an
output's content words that occur in its input, ``coverage`` the share of the input's content
words that the output kept, and ``has_loop`` tells whether any three words in a row come back
more than twice.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

from core.text import split_sentences, word_set
from core.world.prose import PROSE_NOUN, PROSE_SUBJECT, title_and_body
from core.world.renderer import FRAMES, GREETINGS, QUESTIONS, SENDER
from core.world.source_families import FAMILIES

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
FUNCTION_WORDS = word_set(
    "a an the and or but if then so of to in on at by for with from as into onto about over under "
    "after before during since until while than that this these those there here it its is are was "
    "were be been being am do does did done have has had having not no nor can could will would "
    "shall should may might must i we you he she they me us him her them my our your his their "
    "what which who whom whose when where why how all any each every some such both either neither "
    "one also only just very more most much many other another same own too up down out off again "
    "further once s t"
)


@cache
def template_words() -> frozenset[str]:
    """Every word the styles' templates (not the input) put into a text."""
    texts = [PROSE_NOUN, PROSE_SUBJECT, SENDER, "Subject"]
    texts += [frame for frames in FRAMES.values() for frame in frames]
    texts += [line for pair in GREETINGS.values() for line in pair]
    texts += list(QUESTIONS.values())
    texts += [f"{s.doc_noun} {s.label}" for s in FAMILIES.values()]
    return frozenset(w for text in texts for w in _WORD.findall(text.lower().replace("{", " ")))


def content_words(text: str) -> list[str]:
    """The text's content words, in order (repeats kept)."""
    skip = FUNCTION_WORDS | template_words()
    return [w for w in _WORD.findall(text.lower()) if w not in skip]


def faithfulness(output: str, source: str) -> float:
    """The share of ``output``'s content words that occur in ``source`` (1.0 when it has none)."""
    found = content_words(output)
    if not found:
        return 1.0
    known = set(_WORD.findall(source.lower()))
    return sum(w in known for w in found) / len(found)


def coverage(output: str, source: str) -> float:
    """The share of ``source``'s distinct content words that ``output`` keeps (1.0 when none)."""
    wanted = set(content_words(source))
    if not wanted:
        return 1.0
    kept = set(_WORD.findall(output.lower()))
    return len(wanted & kept) / len(wanted)


def first_sentence(text: str) -> str:
    """The first sentence of a text's body (after a heading line, if it has one)."""
    sentences = split_sentences(title_and_body(text)[1])
    return sentences[0] if sentences else ""


def has_loop(text: str, repeats: int = 2) -> bool:
    """Whether some three words in a row occur more than ``repeats`` times."""
    tokens = text.lower().split()
    grams = Counter(zip(tokens, tokens[1:], tokens[2:], strict=False))
    return any(count > repeats for count in grams.values())
