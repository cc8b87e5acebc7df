"""Chat messages plus what Attune knows about the user, as the base model's prompt. Torch-free.

- **The built-in style model** takes tags + task + context (``core.prompting``): the
  last user message is the context (an instruction line in ``build_instruction``'s words, or a
  person's own request around the text, :func:`split_request`, is read for the task and the
  style it asks for); the style tags come from, in rising precedence, the
  persona profile, the CIPHER preference, the client's system messages and the request's own
  "Write it in this style: …" line. The task is ``email`` when an instruction asks for an email,
  else ``summarize``.
- **A chat model** gets a system prompt holding the persona and the CIPHER preference, followed by
  the client's own system message; a template that refuses a system role gets it in front of the
  first user message.
- **Any other model** gets the same text laid out as ``System: … User: … Assistant:``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.prompting import build_prompt, is_style_tokenizer
from core.text import sentence_ends
from core.world.preferences import phrase_to_style

Message = Mapping[str, str]
_INSTRUCTION = re.compile(
    r"^(?P<task>Summarize the following [^\n.]*\.|"
    r"Write an email that shares the key facts of the following [^\n.]*\.)\s*\n"
    r"(?:Write it in this style: (?P<style>[^\n]*?)\.?\s*\n)?\s*",
)
_EMAIL = re.compile(r"\be-?mail\b", re.I)
# A person's own request around the text ("Summarize this:", "Can you turn this into an email?",
# "TL;DR?" under it): words that ask for a restyle, an imperative or polite opening, and words
# that point at the text (a plain "Can you …?" asks about the text only when it names it).
_ASKS = re.compile(
    r"\b(?:summar(?:y|i[sz]e)|rewrite|rephrase|reword|paraphrase|restyle|shorten|condense|"
    r"tl;?dr|e-?mail|bullet points?|key points)\b",
    re.I,
)
_OPENS_ASKING = re.compile(
    r"^(?:please\s+|(?:can|could|would) you\s+(?:please\s+)?)?(?:summari[sz]e|rewrite|rephrase|"
    r"reword|paraphrase|restyle|shorten|condense|tl;?dr|write|make|turn|convert|draft|give|put|"
    r"explain)\b",
    re.I,
)
_NAMES_THE_TEXT = re.compile(
    r"\b(?:this|that|it|the following|below|above|text|paragraph|article|message|note)\b", re.I
)
REQUEST_WORDS = 25  # a longer line is the text itself, not a request about it


@dataclass(frozen=True)
class UserContext:
    """What personalizes the prompt: the persona profile and the CIPHER preference."""

    persona: str = ""
    preference: str = ""


def system_prompt(context: UserContext) -> str:
    """Attune's system prompt for a chat model (empty when nothing is known about the user)."""
    parts = []
    if context.persona:
        parts.append(f"About the user:\n{context.persona}")
    if context.preference:
        parts.append(f"The user's writing preference: {context.preference}. Follow it.")
    return "\n\n".join(parts)


def style_request(messages: Sequence[Message], context: UserContext) -> tuple[str, str, dict]:
    """(task, context text, style tags) for the style model."""
    users = [m["content"] for m in messages if m["role"] == "user"]
    systems = [m["content"] for m in messages if m["role"] in {"system", "developer"}]
    text = users[-1] if users else (systems[-1] if systems else "")
    task = "email" if any(_EMAIL.search(s) for s in systems) else "summarize"
    explicit = ""
    if match := _INSTRUCTION.match(text):
        task = "email" if match["task"].startswith("Write an email") else "summarize"
        explicit = match["style"] or ""
        text = text[match.end() :]
    else:
        explicit, text = split_request(text)
        task = "email" if _EMAIL.search(explicit) else task
    tags: dict[str, str] = {}
    for source in (context.persona, context.preference, *systems, explicit):
        if source:
            tags.update(phrase_to_style(source))
    return task, text.strip(), tags


def _is_request(line: str, alone: bool) -> bool:
    """Whether ``line`` asks for something about the text rather than being part of it: on its
    own line (``alone``) a request that ends ":" or "?" and asks for a restyle or names the text,
    or an imperative one that asks for a restyle ("Please rewrite this as an email."); in front
    of the text on its line, an imperative head ("Summarize this" of "Summarize this: …")."""
    line = line.strip()
    if not line or len(line.split()) > REQUEST_WORDS:
        return False
    if not alone:
        return bool(_OPENS_ASKING.match(line))
    if re.search(r":\s+\S", line):  # "Key points: the office is closed." is a label and text
        return False
    if line.endswith((":", "?")):
        return bool(
            _ASKS.search(line) or (_OPENS_ASKING.match(line) and _NAMES_THE_TEXT.search(line))
        )
    return bool(_OPENS_ASKING.match(line) and _ASKS.search(line))


def split_request(text: str) -> tuple[str, str]:
    """(the person's request, the text to restyle): a request line above the text ("Summarize
    this:", "Please rewrite this as an email for my team."), in front of it on the same line
    ("Summarize this: The council …"), or below it after a blank line ("TL;DR?"). No request:
    ("", the text). The style model would otherwise copy the request as the text's first
    sentence; its words still say what is asked ("an email", "in bullet points", "brief")."""
    body = text.strip()
    first, newline, rest = body.partition("\n")
    if newline and rest.strip() and _is_request(first, alone=True):
        return first.strip(), rest.strip()
    head, colon, tail = first.partition(": ")
    if colon and tail.strip() and _is_request(head + ":", alone=False):
        return head.strip(), (tail + newline + rest).strip()
    above, blank, last = body.rpartition("\n\n")
    if blank and above.strip() and "\n" not in last.strip() and _is_request(last, alone=True):
        return last.strip(), above.strip()
    return "", body


def render_prompt(tokenizer: Any, messages: Sequence[Message], context: UserContext) -> str:
    """The prompt text for ``messages`` as this tokenizer's model expects it."""
    if is_style_tokenizer(tokenizer):
        task, text, tags = style_request(messages, context)
        return build_prompt(task, text, tags)
    ours = system_prompt(context)
    client_system = "\n\n".join(
        m["content"] for m in messages if m["role"] in {"system", "developer"}
    )
    system = "\n\n".join(p for p in (ours, client_system) if p)
    turns = [dict(m) for m in messages if m["role"] not in {"system", "developer"}]
    if getattr(tokenizer, "chat_template", None):
        with_system = ([{"role": "system", "content": system}] if system else []) + turns
        try:
            return str(
                tokenizer.apply_chat_template(
                    with_system, tokenize=False, add_generation_prompt=True
                )
            )
        except Exception:  # a template without a system role: fold it into the first turn
            if system and turns:
                turns[0] = {**turns[0], "content": f"{system}\n\n{turns[0]['content']}"}
            return str(
                tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
            )
    lines = [f"System: {system}"] if system else []
    lines += [f"{m['role'].capitalize()}: {m['content']}" for m in turns]
    return "\n\n".join(lines) + "\n\nAssistant:"


def uses_special_tokens(tokenizer: Any) -> bool:
    """Whether encoding the prompt should add the tokenizer's special tokens (not when a chat
    template already wrote them)."""
    return is_style_tokenizer(tokenizer) or not getattr(tokenizer, "chat_template", None)


@dataclass(frozen=True)
class Cut:
    """The last user message was cut after a sentence to fit the model's context window."""

    kept_sentences: int
    total_sentences: int
    window: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "kept_sentences": self.kept_sentences,
            "total_sentences": self.total_sentences,
            "message": f"The text was cut after sentence {self.kept_sentences} of "
            f"{self.total_sentences} to fit the model's {self.window}-token window.",
        }


def _with_last_user(messages: Sequence[Message], content: str) -> list[dict[str, str]]:
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    return [{**m, "content": content} if i == last else dict(m) for i, m in enumerate(messages)]


def fit_to_window(
    messages: Sequence[Message],
    encode: Callable[[Sequence[Message]], list[int]],
    fits: Callable[[int], bool],
    window: int,
) -> tuple[list[dict[str, str]], list[int], Cut | None]:
    """The messages and their prompt ids, the last user message cut after its last sentence
    that lets the prompt fit (``fits(prompt tokens)``), when the whole of it does not. A message
    whose first sentence alone does not fit is left whole (the caller refuses it)."""
    whole = [dict(m) for m in messages]
    ids = encode(whole)
    users = [m["content"] for m in messages if m["role"] == "user"]
    if fits(len(ids)) or not users:
        return whole, ids, None
    text = users[-1]
    start = match.end() if (match := _INSTRUCTION.match(text)) else 0  # not the task's line
    ends = [end for end in sentence_ends(text) if end > start]
    total = len(ends) + bool(text[ends[-1] :].strip() if ends else text[start:].strip())
    best: tuple[list[dict[str, str]], list[int], Cut] | None = None
    low, high = 1, len(ends) if ends and ends[-1] < len(text.rstrip()) else len(ends) - 1
    while low <= high:  # the largest number of whole sentences that fits
        keep = (low + high) // 2
        cut = _with_last_user(messages, text[: ends[keep - 1]])
        cut_ids = encode(cut)
        if fits(len(cut_ids)):
            best, low = (cut, cut_ids, Cut(keep, total, window)), keep + 1
        else:
            high = keep - 1
    return best if best is not None else (whole, ids, None)
