"""Style attributes of the offline world, their values, defaults and tag tokens.

A *style* maps every attribute name to one of its values; a *partial style* (also called tags)
names only some attributes. Styles are plain ``dict[str, str]`` so they serialize to JSON as is.
The tag token of ``length=short`` is ``<length=short>``; the style model is conditioned on these.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Style = dict[str, str]
"""A full or partial style: attribute name -> value."""


@dataclass(frozen=True)
class Attribute:
    """One style attribute: its name, allowed values and the neutral default value."""

    name: str
    values: tuple[str, ...]
    default: str


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("length", ("short", "medium", "long"), "medium"),
    Attribute("format", ("prose", "bullets"), "prose"),
    Attribute("tone", ("formal", "casual"), "formal"),
    Attribute("emoji", ("no", "yes"), "no"),
    Attribute("greeting", ("no", "yes"), "no"),
    Attribute("person", ("third", "second"), "third"),
    Attribute("question", ("no", "yes"), "no"),
)
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(a.name for a in ATTRIBUTES)
_BY_NAME: dict[str, Attribute] = {a.name: a for a in ATTRIBUTES}
_TAG = re.compile(r"<([a-z]+)=([a-z]+)>")


def attribute(name: str) -> Attribute:
    """The attribute called ``name``; ``KeyError`` for an unknown name."""
    return _BY_NAME[name]


def default_style() -> Style:
    """The neutral style the model writes when no tag is given."""
    return {a.name: a.default for a in ATTRIBUTES}


def validate_style(style: Mapping[str, str]) -> Style:
    """Check that every attribute and value is known; return the style in canonical order."""
    for name, value in style.items():
        if name not in _BY_NAME:
            raise ValueError(f"unknown style attribute {name!r}")
        if value not in _BY_NAME[name].values:
            raise ValueError(f"unknown value {value!r} for style attribute {name!r}")
    return {name: style[name] for name in ATTRIBUTE_NAMES if name in style}


def full_style(partial: Mapping[str, str] | None = None) -> Style:
    """Complete a partial style with the defaults of the attributes it leaves out."""
    return {**default_style(), **validate_style(partial or {})}


def random_style(rng: random.Random) -> Style:
    """A uniformly random full style drawn from ``rng``."""
    return {a.name: rng.choice(a.values) for a in ATTRIBUTES}


def tag_token(name: str, value: str) -> str:
    """The tag token of one attribute value, e.g. ``<length=short>``."""
    return f"<{name}={value}>"


def style_to_tags(style: Mapping[str, str]) -> list[str]:
    """The tag tokens of a (partial) style, in canonical attribute order."""
    return [tag_token(name, value) for name, value in validate_style(style).items()]


def tags_to_style(tags: Iterable[str] | str) -> Style:
    """Parse tag tokens (a list, or one string holding them) back into a partial style."""
    text = tags if isinstance(tags, str) else "".join(tags)
    return validate_style(dict(_TAG.findall(text)))


def all_tag_tokens() -> list[str]:
    """Every tag token of every attribute value (for a tokenizer's vocabulary)."""
    return [tag_token(a.name, v) for a in ATTRIBUTES for v in a.values]
