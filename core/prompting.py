"""The one prompt format of Attune: style model prompts, and instructions for real models.

Torch-free. The style model reads ``build_prompt(task, context_text, tags)``: a context marker,
the context (every line after a space, so that a word opening a line is read as the same token as
when the answer writes it after a frame), the tag tokens, a task token and a response marker
(what decides the answer's first words sits right before it); it then writes the response and
an end-of-text token.
A real instruct model reads ``build_instruction(...)``: the same request in plain English, with the
preference as a readable phrase.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.world.preferences import phrase_to_style, style_to_phrase
from core.world.renderer import TASKS
from core.world.sources import SOURCES
from core.world.styles import all_tag_tokens, style_to_tags

CONTEXT_TOKEN = "<context>"
RESPONSE_TOKEN = "<response>"
TASK_INSTRUCTIONS: dict[str, str] = {
    "summarize": "Summarize the following {label}.",
    "email": "Write an email that shares the key facts of the following {label}.",
}
Preference = Mapping[str, str] | str | None
"""A preference as tags (a partial style), as a phrase, or none (the model's default style)."""


def is_style_tokenizer(tokenizer: Any) -> bool:
    """Whether the tokenizer is the built-in style model's (it knows the response marker)."""
    return RESPONSE_TOKEN in tokenizer.get_vocab()


def task_token(task: str) -> str:
    """The token that names a task, e.g. ``<task=email>``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    return f"<task={task}>"


def special_tokens() -> list[str]:
    """Every token the style model's tokenizer must keep whole."""
    return [*all_tag_tokens(), *(task_token(t) for t in TASKS), CONTEXT_TOKEN, RESPONSE_TOKEN]


def as_tags(preference: Preference) -> dict[str, str]:
    """A preference as tags: a phrase is parsed, tags are returned as they are."""
    if preference is None:
        return {}
    return phrase_to_style(preference) if isinstance(preference, str) else dict(preference)


def build_prompt(task: str, context_text: str, tags: Preference = None) -> str:
    """The style model's prompt; without tags the model writes in its default style."""
    return "".join(
        [
            CONTEXT_TOKEN,
            " " + context_text.replace("\n", "\n "),
            *style_to_tags(as_tags(tags)),
            task_token(task),
            RESPONSE_TOKEN,
        ]
    )


def build_instruction(
    task: str, context_text: str, preference: Preference = None, source: str | None = None
) -> str:
    """The same request for an instruct model, in words; the preference becomes a phrase."""
    label = SOURCES[source].label if source in SOURCES else "text"
    lines = [TASK_INSTRUCTIONS[task].format(label=label)]
    if isinstance(preference, str) and preference.strip():
        lines.append(f"Write it in this style: {preference.strip()}.")
    elif preference:
        lines.append(f"Write it in this style: {style_to_phrase(preference)}.")
    lines += ["", context_text]
    return "\n".join(lines)


def instruction_source(text: str) -> str:
    """The context source a :func:`build_instruction` text names ("" when it names none)."""
    first = text.lstrip().split("\n", 1)[0]
    for name, source in SOURCES.items():
        if any(first == t.format(label=source.label) for t in TASK_INSTRUCTIONS.values()):
            return name
    return ""
