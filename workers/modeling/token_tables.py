"""The copy model's token-id tables, read off a tokenizer's vocabulary once per build (the
``CopyLlamaConfig`` arguments its reading and its repeat guard use)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

from core.world.prose import LOWER_STARTS


def token_tables(tokenizer: PreTrainedTokenizerBase, case_blind: bool) -> dict[str, Any]:
    """The copy model's token-id tables (``CopyLlamaConfig``'s arguments), from one pass over the
    vocabulary: the tokens that end a sentence (what the model counts to know how much of the
    text is left; a question is not a sentence the styles keep); the tokens that are only
    closing marks (".", "!", "?", "...": the pointer leaves their choice to the Llama, the frame
    writes its own); the tokens by what they are to a sentence (a word's start, a clause mark
    ";" or a dash, a comma, "and"/"but": where the renderer may cut a long sentence); and, when
    ``case_blind``, each token's lower-case twin ("ĠThe" -> "Ġthe") for the words the renderer
    lowers at a clause's start (``LOWER_STARTS``), else its own id (also when there is no such
    single token, or it is a special token); the list items' tokens (:func:`list_item_tables`);
    and the special tokens an answer never holds (:func:`unwritten_special_ids`).
    """
    texts = vocabulary_texts(tokenizer)
    special = set(tokenizer.all_special_ids)
    ends: list[int] = []
    closing: list[int] = []
    classes: dict[str, list[int]] = {"word_start": [], "clause": [], "comma": [], "conjunction": []}
    twins: list[int] = []
    for token_id, text in enumerate(texts):
        word = text.strip()
        if text.rstrip().endswith((".", "!")):
            ends.append(token_id)
        if word and set(word) <= set(".!?"):
            closing.append(token_id)
        if text[:1].isspace() and word:
            classes["word_start"].append(token_id)
            if word.lower() in ("and", "but"):
                classes["conjunction"].append(token_id)
        if word in (";", "—", "–"):
            classes["clause"].append(token_id)
        if word == ",":
            classes["comma"].append(token_id)
        if case_blind:
            lowerable = word.lower() in LOWER_STARTS and word != "I" and text.lower() != text
            lowered = tokenizer.encode(text.lower(), add_special_tokens=False) if lowerable else []
            same = token_id in special or len(lowered) != 1
            twins.append(token_id if same else lowered[0])
    return {
        "boundary_token_ids": ends,
        "closing_token_ids": closing,
        "sentence_tokens": classes,
        "lower_token_ids": twins or None,
        **list_item_tables(texts),
        "special_token_ids": unwritten_special_ids(tokenizer),
    }


def vocabulary_texts(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Every token of the vocabulary decoded alone, by id."""
    return [tokenizer.decode([token_id]) for token_id in range(len(tokenizer))]


def list_item_tables(texts: Sequence[str]) -> dict[str, list[int]]:
    """The ids of the tokens (``texts``: :func:`vocabulary_texts`) that hold a line break and of
    the list marker "-" (a span that starts a list item is no repeat to
    ``copy_reading.guard_repeats``)."""
    return {
        "line_break_token_ids": [i for i, text in enumerate(texts) if "\n" in text],
        "list_marker_token_ids": [i for i, text in enumerate(texts) if text.strip() == "-"],
    }


def unwritten_special_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The special tokens but the end (the prompt's tags and markers, padding, the start): an
    answer holds none, so decoding never writes one."""
    return sorted(set(tokenizer.all_special_ids) - {tokenizer.eos_token_id})
