"""Preference inference (CIPHER): read a user's edits and write the preference they show.

Two backends share one interface and one set of prompts. :class:`LLMBackend`
(``apps.memory.llm``) sends the CIPHER prompts to an instruct model behind an OpenAI-compatible
endpoint; :class:`OfflineBackend` answers the same prompts with the offline world's style
detectors, so everything runs without a model. Both report what the LLM exchange costs (calls and
tokens), the offline one as the LLM backend would have sent it.

Torch-free and model-free: the web side, the Celery task and the benchmark all import it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from core.world.detectors import detect_style
from core.world.preferences import most_represented, phrase_to_style, style_to_phrase
from core.world.styles import default_style

EditPair = tuple[str, str]
"""An edit as (original, revised) text."""


class InferenceError(Exception):
    """The backend failed or timed out; the edit stays stored and is retried later.

    ``reason`` names the failure in a word (``unreachable``, ``timeout``, ``http_error``,
    ``invalid_answer``, ``skipped`` while the backend rests after one, ``not_configured``): it is
    what generation reports in its ``attune`` block, where the message (the backend's address)
    must not go.
    """

    def __init__(self, message: str, reason: str = "failed") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Usage:
    """What talking to the instruct model cost: calls, prompt and completion tokens."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.calls + other.calls,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Inferred:
    """A backend's answer: a preference phrase (possibly empty) and what it cost."""

    preference: str
    usage: Usage = Usage()


@dataclass(frozen=True)
class Candidate:
    """One retrieved preference to aggregate; ``in_charge`` when the user wrote it for a context
    similar to the query (see ``apps.memory.cipher``): it outranks the others. ``recency`` is its
    place among the candidates by age (0 the oldest)."""

    preference: str
    in_charge: bool = False
    recency: int = 0  # 0 for the oldest of the candidates, 1 for the next …


class InferenceBackend(Protocol):
    """What CIPHER needs from a language model: describe edits, aggregate preferences."""

    name: str

    def infer(self, pairs: Sequence[EditPair]) -> Inferred:
        """The user's generic writing preference shown by one or more edits."""
        ...

    def aggregate(self, candidates: Sequence[Candidate]) -> Inferred:
        """One short phrase with the most represented of several preferences."""
        ...

    def available(self) -> bool:
        """False while the backend is known to be down (a call would fail at once)."""
        ...


# --- the CIPHER prompts (PRELUDE, Gao et al. 2024), shared by both backends -------------------


def inference_prompt(pairs: Sequence[EditPair]) -> str:
    """The CIPHER inference prompt: the original and revised texts, then the question."""
    shown = "".join(
        f"Original text: {original}\nRevised text by the user: {revised}\n\n"
        for original, revised in pairs
    )
    return (
        f"{shown}Based on the edits and revisions by this user on the original text in the above "
        "examples, what do you find about this user's generic preference in terms of writing "
        "style and formatting? Please answer in a short phrase and only recommend those "
        "preferences that are widely used."
    )


def aggregation_prompt(candidates: Sequence[Candidate]) -> str:
    """The CIPHER-k aggregation prompt; preferences the user wrote are marked as overriding."""
    lines = [
        f"- {c.preference}" + (" (written by the user: it takes precedence)" if c.in_charge else "")
        for c in candidates
    ]
    return (
        "List of user preferences successfully being used to generate outputs for similar "
        "contexts:\n" + "\n".join(lines) + "\nBased on the above examples, please come up with a "
        "short phrase with the most represented writing preferences of this user."
    )


_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Approximate LLM tokens: words and punctuation marks (about one BPE token each)."""
    return len(_TOKEN.findall(text))


def usage_of(prompt: str, response: str) -> Usage:
    """One call's usage, counted with :func:`count_tokens`."""
    return Usage(1, count_tokens(prompt), count_tokens(response))


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a word boundary where there is one."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;")


def as_is(candidates: Sequence[Candidate]) -> Inferred | None:
    """No aggregation needed (no call): none, one, or copies of one phrase, used as it is."""
    if len({c.preference for c in candidates}) > 1:
        return None
    return Inferred(candidates[0].preference if candidates else "")


# --- the offline backend ----------------------------------------------------------------------


class OfflineBackend:
    """Answers the CIPHER prompts with the style detectors of the offline world.

    Inference: the attributes an edit moved (their revised values): evidence per attribute, so
    an attribute enters a preference only when an edit changed it, never because an output
    happened to have it and the user left it alone; several edits are aggregated.
    ``names_kept=True`` is the earlier reader, which also named the marked, non-default features
    a revision kept (bullets, emojis, a question …), as an instruct model describing the revision
    might; kept for the benchmark's comparison.

    Aggregation: per attribute the value at least half of the preferences that name it choose
    (``most_represented(of_naming=True)``; ``share_of_all=True``, the earlier rule: half of all
    the preferences), each weighted by its age (1 for the oldest candidate, 1.5 for the next …:
    of five, the two newest outvote the three older ones, so a change of taste wins once it is
    about as frequent, while one newer entry alone does not outvote two or more), where the
    user's own preferences decide the attributes they name and keep their words.
    """

    name = "offline"

    def __init__(
        self, min_share: float = 0.5, names_kept: bool = False, share_of_all: bool = False
    ) -> None:
        self.min_share = min_share
        self.names_kept = names_kept
        self.share_of_all = share_of_all

    def infer_one(self, original: str, revised: str) -> dict[str, str]:
        """The partial style one edit shows."""
        before, after = detect_style(original), detect_style(revised)
        neutral = default_style()
        return {
            name: value
            for name, value in after.items()
            if value != before[name] or (self.names_kept and value != neutral[name])
        }

    def infer(self, pairs: Sequence[EditPair]) -> Inferred:
        styles = [self.infer_one(original, revised) for original, revised in pairs]
        style = (
            styles[0]
            if len(styles) == 1
            else most_represented(styles, self.min_share, of_naming=not self.share_of_all)
        )
        phrase = style_to_phrase(style)
        return Inferred(phrase, usage_of(inference_prompt(pairs), phrase))

    def available(self) -> bool:
        return True

    def aggregate(self, candidates: Sequence[Candidate]) -> Inferred:
        if (single := as_is(candidates)) is not None:
            return single
        own = list(dict.fromkeys(c.preference for c in candidates if c.in_charge))
        others = [c for c in candidates if not c.in_charge]
        named = {name for text in own for name in phrase_to_style(text)}
        voted = most_represented(
            [phrase_to_style(c.preference) for c in others],
            self.min_share,
            weights=[1 + c.recency / 2 for c in others],
            of_naming=not self.share_of_all,
        )
        rest = {name: value for name, value in voted.items() if name not in named}
        phrase = "; ".join([*own, style_to_phrase(rest)] if rest else own)
        return Inferred(phrase, usage_of(aggregation_prompt(candidates), phrase))


def backend_from_settings() -> InferenceBackend:
    """The backend ``settings.ATTUNE_INFERENCE_BACKEND`` names (``offline`` or ``llm``)."""
    from django.conf import settings

    name = settings.ATTUNE_INFERENCE_BACKEND
    if name == "offline":
        return OfflineBackend()
    if name == "llm":
        from apps.memory.llm import LLMBackend

        return LLMBackend.from_settings()
    raise ValueError(f"ATTUNE_INFERENCE_BACKEND={name!r}: choose offline or llm")
