"""Preference text <-> style tags, and aggregation of several preferences.

``phrase_to_style("bullet points, brief, no emojis")`` gives
``{"length": "short", "format": "bullets", "emoji": "no"}``; ``style_to_phrase`` writes a partial
style back as a readable phrase that ``phrase_to_style`` parses again to the same style.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.world.styles import ATTRIBUTES, Style, validate_style

# (attribute, value) -> phrases that express it; the first phrase is the canonical one.
PHRASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("length", "short"): ("brief", "short", "concise", "succinct", "to the point"),
    ("length", "medium"): ("medium length", "moderate length", "average length"),
    ("length", "long"): ("detailed", "long", "thorough", "comprehensive", "in depth"),
    ("format", "bullets"): ("bullet points", "bulleted", "bullets", "a list", "list format"),
    ("format", "prose"): ("prose", "paragraphs", "no bullet points", "no bullets", "no lists"),
    ("tone", "formal"): ("formal", "professional", "polished", "serious"),
    ("tone", "casual"): ("casual", "informal", "conversational", "playful", "chatty", "relaxed"),
    ("emoji", "yes"): ("with emojis", "emojis", "emoji", "uses emojis"),
    ("emoji", "no"): ("no emojis", "without emojis", "no emoji", "emoji-free"),
    ("greeting", "yes"): (
        "greeting and closing",
        "with a greeting",
        "greets the reader",
        "sign-off",
        "salutation",
    ),
    ("greeting", "no"): ("no greeting", "no greeting or closing", "without a greeting"),
    ("person", "second"): (
        "addresses the reader as you",
        "second person",
        "direct address",
        "speaks to the reader",
    ),
    ("person", "third"): ("third person", "impersonal", "no direct address"),
    ("question", "yes"): (
        "ends with a question",
        "inquisitive",
        "interactive",
        "asks a question",
        "a closing question",
    ),
    ("question", "no"): ("no questions", "no question", "without questions"),
}
_ORDER = {a.name: i for i, a in enumerate(ATTRIBUTES)}
# Longest phrase first, so "no emojis" wins over "emojis" and "no bullets" over "bullets".
_MATCHERS: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])"), name, value)
    for phrase, name, value in sorted(
        ((p, name, value) for (name, value), phrases in PHRASES.items() for p in phrases),
        key=lambda item: -len(item[0]),
    )
]


@dataclass(frozen=True)
class ParsedPreference:
    """What a preference phrase says: a partial style, and the words no attribute explains."""

    style: Style
    unmatched: tuple[str, ...]


def parse_preference(phrase: str) -> ParsedPreference:
    """Read a preference phrase; when it names two values of one attribute, the later wins."""
    text = " " + phrase.lower() + " "
    found: list[tuple[int, str, str]] = []
    for pattern, name, value in _MATCHERS:
        for match in pattern.finditer(text):
            found.append((match.start(), name, value))
            text = text[: match.start()] + "|" * len(match.group()) + text[match.end() :]
    style: Style = {}
    for _, name, value in sorted(found):
        style[name] = value
    leftovers = re.split(r"[|,;.]+|\band\b|\bwith\b", text)
    unmatched = tuple(w.strip() for w in leftovers if w.strip())
    return ParsedPreference(style=validate_style(style), unmatched=unmatched)


def phrase_to_style(phrase: str) -> Style:
    """The partial style a preference phrase expresses (unknown words are ignored)."""
    return parse_preference(phrase).style


def style_to_phrase(style: Mapping[str, str]) -> str:
    """A readable phrase for a partial style, e.g. ``"brief, bullet points, no emojis"``."""
    return ", ".join(PHRASES[(name, value)][0] for name, value in validate_style(style).items())


def most_represented(
    styles: Sequence[Mapping[str, str]],
    min_share: float = 0.5,
    weights: Sequence[float] | None = None,
    of_naming: bool = False,
) -> Style:
    """Per attribute, the value most of ``styles`` name, kept when at least ``min_share`` of
    all the styles name it; ties go to the value named first. With ``weights`` (one per style)
    the counts and the share are weighted.

    ``of_naming``: the share is of the styles that name the attribute at all (evidence per
    attribute: a style that says nothing about an attribute neither supports nor dilutes it), so
    partial preferences, each naming only what one edit moved, add up instead of cancelling out.
    """
    if not styles:
        return {}
    weights = [1.0] * len(styles) if weights is None else list(weights)
    if len(weights) != len(styles):
        raise ValueError(f"{len(weights)} weights for {len(styles)} styles")
    counts: dict[str, Counter[str]] = {}
    for style, weight in zip(styles, weights, strict=True):
        for name, value in validate_style(style).items():
            counts.setdefault(name, Counter())[value] += weight
    result: Style = {}
    for name in sorted(counts, key=_ORDER.__getitem__):
        value, count = counts[name].most_common(1)[0]
        total = sum(counts[name].values()) if of_naming else sum(weights)
        if count >= min_share * total:
            result[name] = value
    return result


def aggregate_phrases(phrases: Sequence[str], min_share: float = 0.5) -> str:
    """One phrase with the most represented preferences of several phrases (CIPHER-k)."""
    return style_to_phrase(most_represented([phrase_to_style(p) for p in phrases], min_share))
