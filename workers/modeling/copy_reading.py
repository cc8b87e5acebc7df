"""How the copy pointer reads: what the token ids alone say about where to copy from next.

Torch only, no parameters: the suffix match of an induction head, the reading cursor, coverage
(what the answer already wrote), and the reading's progress (sentences left after the cursor, and
where the cursor is in a long sentence the renderer may cut), and the decoding guard against
repeats. ``copy_lm`` weighs these with learned bonuses. Every function works on a batch of rows
(``ids``: (b, T)) and a set of query ``positions`` (Q), so one full pass (training) and one token
at a time (decoding) agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

CONFIDENT = 3  # suffix-match length (tokens) that moves the reading cursor
PIECE_STATES = 8  # long sentence? x enough words left? x a clause break next?
REPEAT_SPAN, REPEAT_TIMES = 4, 2  # while decoding, no 4 tokens in a row a third time


@dataclass(frozen=True)
class Reading:
    """Where the pointer is in its reading, per row: the cursor (-1: none yet), which positions'
    next tokens the answer has written (``used``), and which positions the last query matched
    (``pending``: written if the next token is theirs)."""

    cursor: torch.Tensor
    used: torch.Tensor
    pending: torch.Tensor

    @classmethod
    def start(cls, rows: int, positions: int, device: torch.device) -> Reading:
        none = torch.zeros((rows, positions), dtype=torch.bool, device=device)
        cursor = torch.full((rows,), -1, dtype=torch.long, device=device)
        return cls(cursor, none, none.clone())

    def grown(self, positions: int) -> Reading:
        """The same reading over ``positions`` key positions (the new ones not written yet)."""
        extra = positions - self.used.shape[1]
        pad = (0, max(0, extra))
        return Reading(
            self.cursor,
            torch.nn.functional.pad(self.used, pad),
            torch.nn.functional.pad(self.pending, pad),
        )


@dataclass(frozen=True)
class Alignment:
    """What the ids say about where the pointer should look, per query (``_alignment`` of the
    model): the bonus over earlier positions, which ones it may point at, the reading after the
    last query, and (with the progress feature) the progress bucket and the next sentence's
    start."""

    bonus: torch.Tensor
    allowed: torch.Tensor
    reading: Reading
    progress: torch.Tensor | None = None
    next_unit: torch.Tensor | None = None
    cuts: torch.Tensor | None = None  # (b, T - 1): position j's next token opens a cut


class TokenTables:
    """A model config's token-id tables (``boundary_token_ids``, ``lower_token_ids``,
    ``closing_token_ids``, the classes of ``sentence_tokens``) as tensors, made once per device
    (not buffers: a model loaded from a checkpoint builds its buffers empty)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self._made: dict[tuple[str, torch.device], torch.Tensor] = {}

    def get(self, name: str, device: torch.device) -> torch.Tensor:
        key = (name, device)
        if key not in self._made:
            values = getattr(self.config, name, None)
            if values is None:
                values = self.config.sentence_tokens[name]
            self._made[key] = torch.tensor(values, dtype=torch.long, device=device)
        return self._made[key]

    def has(self, name: str) -> bool:
        """Whether the config has a non-empty table ``name``."""
        return bool(getattr(self.config, name, None) or self.config.sentence_tokens.get(name))

    def isin(self, ids: torch.Tensor, name: str) -> torch.Tensor:
        """Which ids are in table ``name``."""
        return torch.isin(ids, self.get(name, ids.device))

    def lower(self, ids: torch.Tensor) -> torch.Tensor:
        """Each token's lower-case twin (the ids as they are without that table)."""
        if not self.has("lower_token_ids"):
            return ids
        return self.get("lower_token_ids", ids.device)[ids]


def match_lengths(ids: torch.Tensor, positions: torch.Tensor, longest: int) -> torch.Tensor:
    """For each query position ``t`` and earlier position ``j``: how many tokens ending at ``j``
    equal those ending at ``t`` (0 to ``longest``), the suffix match of an induction head,
    counted on the ids themselves."""
    candidates = torch.arange(ids.shape[1] - 1, device=ids.device)
    running = torch.ones(
        ids.shape[0], positions.shape[0], candidates.shape[0], dtype=torch.bool, device=ids.device
    )
    lengths = torch.zeros(running.shape, dtype=torch.uint8, device=ids.device)
    for back in range(longest):
        q, k = positions - back, candidates - back
        same = ids[:, q.clamp(min=0)][:, :, None] == ids[:, k.clamp(min=0)][:, None, :]
        running = running & same & (q >= 0)[None, :, None] & (k >= 0)[None, None, :]
        lengths += running
    return lengths


def first_position(ids: torch.Tensor, token: int | None) -> torch.Tensor:
    """Per row, the position of the first ``token`` (-1 when none): the context marker, where a
    reading starts before it has matched anything (pointing there copies the first word)."""
    width = ids.shape[1]
    if token is None:
        return torch.full((ids.shape[0],), -1, device=ids.device)
    marks = torch.where(ids == token, torch.arange(width, device=ids.device), width)
    first = marks.min(dim=1).values
    return torch.where(first < width, first, -1)


def answer_begins(ids: torch.Tensor, answer: int | None) -> torch.Tensor:
    """Per row, the position of the last ``answer`` token (the width when none)."""
    width = ids.shape[1]
    if answer is None:
        return torch.full((ids.shape[0],), width, device=ids.device)
    marks = torch.where(ids == answer, torch.arange(width, device=ids.device), -1)
    latest = marks.max(dim=1).values
    return torch.where(latest >= 0, latest, width)


def coverage(
    ids: torch.Tensor,
    positions: torch.Tensor,
    lengths: torch.Tensor,
    before: Reading,
    answer: int | None,
) -> tuple[torch.Tensor, Reading]:
    """Per query, which positions' next tokens the answer (what follows the last ``answer``
    token) has already written after matching them; and the state to go on."""
    width = ids.shape[1]
    in_answer = positions[None, :] >= answer_begins(ids, answer)[:, None]  # (b, Q)
    following = torch.where(
        (positions + 1 < width)[None, :], ids[:, (positions + 1).clamp(max=width - 1)], -1
    )
    wrote = (lengths >= 1) & (following[:, :, None] == ids[:, None, 1:]) & in_answer[:, :, None]
    first = ids[:, positions[0]]  # what followed the previous call's last query
    carried = before.used | (before.pending & (ids[:, 1:] == first[:, None]))
    so_far = wrote.long().cumsum(dim=1) - wrote.long()  # strictly before each query
    used = carried[:, None, :] | (so_far > 0)
    pending = (lengths[:, -1] >= 1) & in_answer[:, -1:]
    return used, Reading(before.cursor, used[:, -1] | wrote[:, -1], pending)


def cut_points(ids: torch.Tensor, tables: TokenTables) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the renderer cuts the context's long sentences (``core.world.prose``'s rule, on
    token ids): per row, (the last token of each cut's head, the last token of its clause break
    ", and" / ", but" / ";" / a dash), both (b, T) booleans. A sentence is long with more than
    ``long_sentence_words`` word starts; a break cuts when the head since the last cut and the
    rest of the sentence after it each hold ``min_piece_words`` or more. Pointing after a head
    writes a closing mark (the pointer's closing share), and a break's last token counts as a
    sentence end for the reading's progress (pointing there copies the next piece's first word).
    """
    config = tables.config
    heads = torch.zeros_like(ids, dtype=torch.bool)
    breaks = torch.zeros_like(ids, dtype=torch.bool)
    if not config.sentence_tokens:
        return heads, breaks
    width = ids.shape[1]
    opening = first_position(ids, config.context_token_id).clamp(min=0).tolist()
    ending = answer_begins(ids, config.answer_token_id).clamp(max=width).tolist()
    words = tables.isin(ids, "word_start").long().cumsum(dim=1)
    ends = tables.isin(ids, "boundary_token_ids")
    conjunction = torch.nn.functional.pad(tables.isin(ids, "conjunction")[:, 1:], (0, 1))
    clause = tables.isin(ids, "clause")
    # where a break starts: a clause mark, or a comma before "and"/"but" (which ends it)
    marks = clause | (tables.isin(ids, "comma") & conjunction)
    last_of = torch.arange(width, device=ids.device) + (~clause).long()  # the break's last token
    for row in range(ids.shape[0]):
        lo, hi = opening[row], ending[row]
        if hi - lo < 2:
            continue
        stops = (ends[row, lo:hi].nonzero().flatten() + lo).tolist()
        if not stops or stops[-1] != hi - 1:
            stops.append(hi - 1)
        starts = marks[row, lo:hi].nonzero().flatten() + lo
        found = list(zip(starts.tolist(), last_of[row, starts].tolist(), strict=True))
        if not found:
            continue
        count = words[row].tolist()
        begin = lo
        for stop in stops:
            inside = [(k, last) for k, last in found if begin < k < stop]
            if inside and _words(count, begin, stop) > config.long_sentence_words:
                _cut_sentence(row, begin, stop, inside, count, config, heads, breaks)
            begin = stop + 1
    return heads, breaks


def _words(count: list[int], a: int, b: int) -> int:
    """Word starts at tokens ``a`` … ``b`` (``count``: their running total)."""
    return count[b] - (count[a - 1] if a > 0 else 0) if b >= a else 0


def _cut_sentence(
    row: int,
    begin: int,
    stop: int,
    found: list[tuple[int, int]],
    count: list[int],
    config: Any,
    heads: torch.Tensor,
    breaks: torch.Tensor,
) -> None:
    """Mark the cuts of the sentence at tokens ``begin`` … ``stop`` whose breaks (first and last
    token: a clause mark, or a comma and "and"/"but") are ``found`` (see :func:`cut_points`)."""
    piece = begin
    for k, last in found:
        if last >= stop:
            continue
        if _words(count, piece, k - 1) >= config.min_piece_words and (
            _words(count, last + 1, stop) >= config.min_piece_words
        ):
            heads[row, k - 1] = True
            breaks[row, last] = True
            piece = last + 1


def progress(
    ids: torch.Tensor,
    positions: torch.Tensor,
    cursors: torch.Tensor,
    tables: TokenTables,
    breaks: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """How far the reading is, per query at ``positions``: the number of sentence ends of the
    prompt between the cursor (the start, before the first match) and the query, capped at the
    last of ``progress_buckets`` (with the piece state of :func:`piece_state` on top, when the
    config has ``sentence_tokens``); and where the first of them lies (pointing there copies the
    next sentence's first token). What lets the model end a ``long`` answer with the text's last
    sentence, frame that one as the last, and cut a long sentence where the renderer does.
    ``breaks`` (of :func:`cut_points`) count as sentence ends too."""
    config = tables.config
    before_answer = (
        torch.arange(ids.shape[1], device=ids.device)[None, :]
        < answer_begins(ids, config.answer_token_id)[:, None]
    )
    ends = tables.isin(ids, "boundary_token_ids")
    if breaks is not None:
        ends = ends | breaks
    seen = (ends & before_answer).long().cumsum(dim=1)
    at_cursor = torch.where(cursors >= 0, seen.gather(1, cursors.clamp(min=0)), 0)
    left = seen[:, positions] - at_cursor
    buckets = left.clamp(max=config.progress_buckets - 1)
    next_unit = torch.searchsorted(seen, at_cursor + 1)
    if config.sentence_tokens:
        words = (tables.isin(ids, "word_start") & before_answer).long().cumsum(dim=1)
        state = piece_state(ids, words, seen, cursors, next_unit, tables)
        buckets = buckets + config.progress_buckets * state
    return buckets, next_unit


def piece_state(
    ids: torch.Tensor,
    words: torch.Tensor,
    seen: torch.Tensor,
    cursors: torch.Tensor,
    next_unit: torch.Tensor,
    tables: TokenTables,
) -> torch.Tensor:
    """Where the cursor is in its sentence, as the renderer's rule for cutting a long one sees it
    (0 to ``PIECE_STATES`` - 1): whether the sentence is long (more than ``long_sentence_words``
    words), whether ``min_piece_words`` or more are left after the cursor, and whether a clause
    break ("; ", ", and", ", but", " — ") comes next. ``words`` and ``seen`` count word starts
    and sentence ends up to each position."""
    width, config = ids.shape[1], tables.config
    here = cursors.clamp(min=0)
    at_cursor = seen.gather(1, here) * (cursors >= 0)
    start = torch.searchsorted(seen, at_cursor).clamp(max=width - 1)  # the sentence's start
    opening = first_position(ids, config.context_token_id)[:, None].clamp(min=0)
    start = torch.where(at_cursor > 0, start, opening)
    end = next_unit.clamp(max=width - 1)
    long = (words.gather(1, end) - words.gather(1, start)) > config.long_sentence_words
    enough = (words.gather(1, end) - words.gather(1, here)) >= config.min_piece_words
    after, then = (here + 1).clamp(max=width - 1), (here + 2).clamp(max=width - 1)
    comma = tables.isin(ids, "comma").gather(1, after)
    breaks = tables.isin(ids, "clause").gather(1, after) | (
        comma & tables.isin(ids, "conjunction").gather(1, then)
    )
    return long.long() + 2 * enough.long() + 4 * breaks.long()


def guard_repeats(
    ids: torch.Tensor,
    next_log_probs: torch.Tensor,
    answer: int | None,
    list_items: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> None:
    """While decoding: rule out (in ``next_log_probs``) a token that would make the same
    ``REPEAT_SPAN`` tokens occur a third time in the answer (after the last ``answer`` token): a
    small model that lost its place copies no loop. A span that starts a list item (a line break,
    then the list marker; ``list_items``: the ids of the tokens that hold a line break and of the
    marker) does not count: every item starts that way, and the formal second-person frames open
    with the same word ("- You should …", "- You will …"), so a list's fourth item is a format,
    not a loop. A loop that writes the answer again is still stopped by its other spans."""
    if answer is None:
        return
    for row in range(ids.shape[0]):
        starts = (ids[row] == answer).nonzero()
        if not len(starts):
            continue
        written = ids[row, int(starts[-1]) + 1 :]
        if written.shape[0] < REPEAT_SPAN:
            continue
        spans = written.unfold(0, REPEAT_SPAN, 1)
        prefix = written[-(REPEAT_SPAN - 1) :]
        same = (spans[:, :-1] == prefix).all(dim=1)
        if list_items is not None:
            breaks, markers = (torch.isin(spans, table) for table in list_items)
            same &= ~(breaks[:, :-1] & markers[:, 1:]).any(dim=1)
        after = spans[same, -1]
        if after.numel():
            tokens, counts = after.unique(return_counts=True)
            next_log_probs[row, tokens[counts >= REPEAT_TIMES]] = float("-inf")


def guard_stutter(ids: torch.Tensor, next_log_probs: torch.Tensor, words: torch.Tensor) -> None:
    """While decoding: rule out (in ``next_log_probs``) a word (``words``: the ids of the tokens
    that start one) the row has just written twice in a row. A text may say "that that" (a frame's
    "note that", then the text's own "that"), never three times; a pointer that lost its place
    in a long sentence rested on the same word ("see see see see see notes")."""
    if ids.shape[1] < 2:
        return
    last = ids[:, -1]
    stutter = (last == ids[:, -2]) & torch.isin(last, words)
    rows = stutter.nonzero().flatten()
    next_log_probs[rows, last[rows]] = float("-inf")
