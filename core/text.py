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


def words(text: str) -> list[str]:
    """Split a text into whitespace-separated tokens (punctuation stays attached, as in PRELUDE)."""
    return _WORD.findall(text)


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
