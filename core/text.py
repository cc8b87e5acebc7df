"""Word-level edit cost and diff, shared by the feedback store, CIPHER and the offline world;
the hash key of a response text (CoPL's graph).

Pure Python, no Django and no torch: safe to import anywhere.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from typing import Literal

_WORD = re.compile(r"\S+")
SENTENCE_END = re.compile(r"""[.!?]+["'”’)\]]*(?=\s|$)""")
"""A run of sentence-ending marks (and the quotes or brackets that close after them)."""


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text`` as a set (for word lists written as text)."""
    return frozenset(text.split())


_ABBREVIATIONS = word_set(
    "mr mrs ms dr prof st jr sr vs etc inc ltd co corp no fig eg ie al approx dept est gen gov "
    "jan feb mar apr jun jul aug sep sept oct nov dec mt ft lt col sgt rev"
)


def words(text: str) -> list[str]:
    """Split a text into whitespace-separated tokens (punctuation stays attached, as in PRELUDE)."""
    return _WORD.findall(text)


def _is_abbreviation(before: str) -> bool:
    """Whether the word that ends at a full stop is an abbreviation or an initial ("Dr", "U.S")."""
    last = before.split()[-1] if before.split() else ""
    word = re.sub(r"[^\w.]", "", last).rstrip(".")
    bare = word.replace(".", "").lower()
    return (
        (len(bare) == 1 and bare.isalpha())
        or bare in _ABBREVIATIONS
        or ("." in word and bare.isalpha())
    )


def sentence_ends(text: str) -> list[int]:
    """Offsets just past each sentence end in ``text`` (abbreviations and initials are not ends)."""
    ends = []
    for match in SENTENCE_END.finditer(text):
        mark = match.group()
        if mark == "." and _is_abbreviation(text[: match.start()]):
            continue
        ends.append(match.end())
    return ends


def split_sentences(text: str) -> list[str]:
    """The sentences of a paragraph, whitespace tidied (a last one without an end too)."""
    flat = " ".join(text.split())
    sentences, start = [], 0
    for end in sentence_ends(flat):
        if sentence := flat[start:end].strip():
            sentences.append(sentence)
        start = end
    if rest := flat[start:].strip():
        sentences.append(rest)
    return sentences


def text_key(text: str) -> str:
    """A response text's key, the first 32 hex digits of its SHA-256: CoPL's graph keys its
    response nodes by it, so the stored artifacts hold no user's text and identical texts, whoever
    wrote or rated them, are one node."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def word_levenshtein(a: str, b: str) -> int:
    """Levenshtein distance between two texts counted in words (insert, delete, substitute = 1)."""
    x, y = words(a), words(b)
    if len(x) < len(y):
        x, y = y, x
    if not y:
        return len(x)
    previous = list(range(len(y) + 1))
    for i, xw in enumerate(x, start=1):
        current = [i]
        for j, yw in enumerate(y, start=1):
            current.append(
                min(
                    previous[j] + 1,  # delete
                    current[j - 1] + 1,  # insert
                    previous[j - 1] + (xw != yw),  # substitute
                )
            )
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class DiffOp:
    """One span of a word diff: ``equal``, ``delete`` (only in the original) or ``insert``."""

    op: Literal["equal", "delete", "insert"]
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"op": self.op, "text": self.text}


def word_diff(original: str, edited: str) -> list[DiffOp]:
    """A word-level diff from ``original`` to ``edited``; a replace is a delete then an insert."""
    a, b = words(original), words(edited)
    ops: list[DiffOp] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            ops.append(DiffOp("equal", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            ops.append(DiffOp("delete", " ".join(a[i1:i2])))
        if j2 > j1:
            ops.append(DiffOp("insert", " ".join(b[j1:j2])))
    return ops
