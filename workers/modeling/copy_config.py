"""The configuration of the style model's architecture (``copy_lm``): a Llama's, plus the copy
pointer's settings and the token tables its reading uses (``copy_reading``)."""

from __future__ import annotations

from typing import Any

from transformers import LlamaConfig

MODEL_TYPE = "attune_copy_llama"


class CopyLlamaConfig(LlamaConfig):
    """A Llama configuration plus the pointer's width (``copy_dim``), how many tokens back its
    suffix match looks (``copy_match``), the token after which the answer starts
    (``answer_token_id``, for the repeat guard and coverage), and the reading's progress: the
    tokens that end a sentence (``boundary_token_ids``) and how many sentences left to read it
    tells apart (``progress_buckets``; 0, as in builds before v3: no progress feature), where a
    long sentence may be cut (``sentence_tokens``: the token ids that start a word, that are a
    clause mark, a comma, or "and"/"but"; ``long_sentence_words`` and ``min_piece_words``, the
    renderer's rule; none: no such feature), the closing marks whose choice the pointer leaves
    to the Llama (``closing_token_ids``: it says where a sentence ends, the frame says with
    which mark), and each
    token's lower-case twin (``lower_token_ids``, by id; none before v3: the pointer copies as
    written), the token the context follows (``context_token_id``: a reading starts there), and
    whether the pointer cuts long sentences where the renderer does (``cut_long_sentences``,
    from v4: ``copy_reading.cut_points``; a head's end is a sentence end to the pointer), and
    the tokens that hold a line break and those of the list marker "-" (``line_break_token_ids``,
    ``list_marker_token_ids``: the repeat guard does not count a span that starts a list item;
    the loader fills them in for builds saved before they were), and the special tokens but the
    end (``special_token_ids``: the prompt's tags and markers, never in an answer, so decoding
    never writes one; the loader fills them in too), and whether only a match in the prompt moves
    the reading cursor (``cursor_reads_prompt``, from v5; before, a match in the answer itself,
    as ". \\n -" between list items, moved it into the answer, where no sentence is left)."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        copy_dim: int = 64,
        copy_match: int = 6,
        answer_token_id: int | None = None,
        boundary_token_ids: list[int] | None = None,
        progress_buckets: int = 0,
        closing_token_ids: list[int] | None = None,
        sentence_tokens: dict[str, list[int]] | None = None,
        long_sentence_words: int = 22,
        min_piece_words: int = 5,
        lower_token_ids: list[int] | None = None,
        context_token_id: int | None = None,
        cut_long_sentences: bool = False,
        line_break_token_ids: list[int] | None = None,
        list_marker_token_ids: list[int] | None = None,
        special_token_ids: list[int] | None = None,
        cursor_reads_prompt: bool = False,
        **kwargs: Any,
    ) -> None:
        self.copy_dim = copy_dim
        self.copy_match = copy_match
        self.answer_token_id = answer_token_id
        self.boundary_token_ids = list(boundary_token_ids or [])
        self.progress_buckets = progress_buckets
        self.closing_token_ids = list(closing_token_ids or [])
        self.sentence_tokens = {k: list(v) for k, v in (sentence_tokens or {}).items()}
        self.long_sentence_words = long_sentence_words
        self.min_piece_words = min_piece_words
        self.lower_token_ids = list(lower_token_ids or [])
        self.context_token_id = context_token_id
        self.cut_long_sentences = cut_long_sentences
        self.line_break_token_ids = list(line_break_token_ids or [])
        self.list_marker_token_ids = list(list_marker_token_ids or [])
        self.special_token_ids = list(special_token_ids or [])
        self.cursor_reads_prompt = cursor_reads_prompt
        super().__init__(**kwargs)
