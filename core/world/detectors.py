"""Style detectors: recover every style attribute from a text, and check which facts it keeps.

Each detector is a small rule on surface features (lines, sentence ends, marker words, emoji), so
they apply to any text: the renderer's, the style model's, a simulated user's edit or a real
model's output.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from core.text import sentence_ends, split_sentences
from core.world.sources import Fact
from core.world.styles import Style

_EMOJI = re.compile("[\U0001f300-\U0001faff\u2300-\u23ff\u2600-\u27bf\u2b50\u2b55]")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|yourself|you'll|you're|you've|you'd)\b", re.I)
_GREETING = re.compile(r"^(?:dear|hello|hi|hey|good (?:day|morning|afternoon|evening))\b", re.I)
_CLOSING = re.compile(
    r"^(?:best|kind regards|regards|cheers|thanks|thank you|sincerely|that's all)\b", re.I
)
_CASUAL = re.compile(
    r"\b(?:So|Plus|Oh|Basically|Get this|Heads up|Hey|Hi|Cheers|Pretty|you'll|That's|What's)\b|!"
)
_FORMAL = re.compile(
    r"\b(?:According to|In addition|Furthermore|Moreover|Notably|Finally|may|should be aware"
    r"|will find|Dear|Kind regards|Best regards|Good day|might)\b"
)
_CLOSING_FRAME = re.compile(r"^(?:Finally|Also),")
LENGTH_LIMITS: tuple[tuple[int, str], ...] = ((2, "short"), (4, "medium"))


def blocks(text: str) -> list[str]:
    """The text's blocks (separated by blank lines), stripped, without an email subject line."""
    parts = [b.strip() for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    return [b for b in parts if not b.lower().startswith("subject:")]


def _is_frame_line(block: str) -> bool:
    """A greeting, closing or lone question block: not part of the body."""
    one_line = "\n" not in block and len(block.split()) <= 10
    frame = bool(_GREETING.match(block) or _CLOSING.match(block) or block.endswith("?"))
    return one_line and frame


def _body_lines(text: str) -> list[str]:
    body = [b for b in blocks(text) if not _is_frame_line(b)]
    return [line for b in body for line in b.splitlines() if line.strip()]


def body_units(text: str) -> int:
    """How many content units the body has: bullet lines, or else sentences."""
    lines = _body_lines(text)
    bullets = [line for line in lines if _BULLET.match(line)]
    if bullets:
        return len(bullets)
    return sum(len(sentence_ends(_EMOJI.sub("", line))) for line in lines)


def ends_with_closing_frame(text: str) -> bool:
    """Whether the body's last unit opens with a closing frame ("Finally, …", casual "Also, …"):
    the mark of a text that goes through all of its source."""
    lines = _body_lines(text)
    if not lines:
        return False
    last = _EMOJI.sub("", _BULLET.sub("", lines[-1])).strip()
    sentences = split_sentences(last) if not _BULLET.match(lines[-1]) else [last]
    return bool(sentences) and bool(_CLOSING_FRAME.match(sentences[-1]))


def detect_length(text: str) -> str:
    """short (up to 2 content units), medium (up to 4) or long (more, or 3 to 4 that end with a
    closing frame: all of a short source)."""
    units = body_units(text)
    label = next((label for limit, label in LENGTH_LIMITS if units <= limit), "long")
    if label == "medium" and ends_with_closing_frame(text):
        return "long"
    return label


def detect_format(text: str) -> str:
    """bullets when at least two lines are list items, else prose."""
    lines = [line for line in text.splitlines() if line.strip()]
    return "bullets" if sum(bool(_BULLET.match(line)) for line in lines) >= 2 else "prose"


def detect_tone(text: str) -> str:
    """casual when casual markers (exclamations, "So,", "you'll" …) outnumber formal ones."""
    casual, formal = len(_CASUAL.findall(text)), len(_FORMAL.findall(text))
    return "casual" if casual > formal else "formal"


def detect_emoji(text: str) -> str:
    """yes when the text holds any emoji."""
    return "yes" if _EMOJI.search(text) else "no"


def detect_greeting(text: str) -> str:
    """yes when the text opens with a greeting line or ends with a closing line."""
    parts = blocks(text)
    if not parts:
        return "no"
    first, last = parts[0].splitlines()[0], parts[-1].splitlines()[-1]
    opened = bool(_GREETING.match(first)) and len(first.split()) <= 5
    closed = bool(_CLOSING.match(last)) and len(last.split()) <= 5
    return "yes" if opened or closed else "no"


def detect_person(text: str) -> str:
    """second when the text addresses the reader as "you"."""
    return "second" if _SECOND_PERSON.search(text) else "third"


def detect_question(text: str) -> str:
    """yes when the text asks a question."""
    return "yes" if "?" in text else "no"


DETECTORS: dict[str, Callable[[str], str]] = {
    "length": detect_length,
    "format": detect_format,
    "tone": detect_tone,
    "emoji": detect_emoji,
    "greeting": detect_greeting,
    "person": detect_person,
    "question": detect_question,
}


def detect_style(text: str) -> Style:
    """The full style of ``text``, one value per attribute."""
    return {name: detect(text) for name, detect in DETECTORS.items()}


def contains_fact(text: str, fact: Fact) -> bool:
    """Whether ``text`` states the fact's key value as a whole word or phrase."""
    return re.search(rf"(?<![\w,]){re.escape(fact.value)}(?![\w]|,\d)", text) is not None


def fact_retention(text: str, facts: Iterable[Fact]) -> float:
    """The share of ``facts`` whose key value ``text`` keeps (1.0 when there are none)."""
    wanted = list(facts)
    if not wanted:
        return 1.0
    return sum(contains_fact(text, fact) for fact in wanted) / len(wanted)


def style_matches(text: str, style: Mapping[str, str]) -> dict[str, bool]:
    """For each attribute ``style`` names, whether ``text`` has that value."""
    detected = detect_style(text)
    return {name: detected[name] == value for name, value in style.items()}
