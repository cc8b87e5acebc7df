"""The style model's architecture: a Llama with a pointer that copies from what it has read.

A causal LM whose next-token distribution mixes two: the Llama's own (``lm_head``), and a copy
distribution from a pointer over the sequence so far, the pointer-sentinel idea of Merity et al.
(2016) in its induction form: position ``t`` scores every earlier position ``j`` by
``q(h_t)·k(h_j)`` plus learned bonuses for how many tokens ending at ``j`` equal those ending
at ``t`` (an induction head's suffix match) and for where ``j`` lies from the reading cursor
(the latest confident match in the prompt, since v5: go on right after it, not back), and puts
that weight on the token that *followed* ``j``; so the text goes on copying a passage, in order.
A gate ``g(h_t)`` mixes the two::

    p(w) = g · softmax(lm_head(h_t))[w] + (1 − g) · Σ_{j < t, x_{j+1} = w} softmax_j(score_tj)

Since v3 the pointer also reads case-blind and may write a copied word's lower-case twin ("The"
-> "the", by a learned gate); leaves the choice of a closing mark to the Llama (the weight on a
position followed by "." goes to the closing marks as the Llama ranks them, so a casual frame
ends with "!"); jumps to the next sentence's start by a learned amount per query; and adds to the
query's state, by a learned share, an embedding of the reading's progress: how many sentences
are left after the cursor and where the cursor is in a long sentence (``copy_reading``).

``logits`` are the log of that mixture (already normalized), so generation, PEFT (LoRA on every
linear layer, the pointer's included), TRL's losses and the serving engine use it as any causal
LM. The pointer's keys, token ids and cursor ride on the generation cache object, so decoding
with a cache costs one query per new token; decoding rules out the special tokens but the end
(the prompt's tags and markers) and a token that would write the same four tokens a third time in
one answer (a repeat guard, as servers' repetition penalties).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, LlamaForCausalLM
from transformers.modeling_outputs import CausalLMOutputWithPast

from workers.modeling.copy_config import MODEL_TYPE, CopyLlamaConfig
from workers.modeling.copy_reading import (
    CONFIDENT,
    PIECE_STATES,
    Alignment,
    Reading,
    TokenTables,
    answer_begins,
    coverage,
    cut_points,
    first_position,
    guard_repeats,
    guard_stutter,
    match_lengths,
    progress,
)

_STATE = "_attune_pointer"
TINY = 1e-9


class CopyLlamaForCausalLM(LlamaForCausalLM):
    """:class:`LlamaForCausalLM` with the copy pointer and its gate (see the module's text)."""

    config_class = CopyLlamaConfig

    def __init__(self, config: CopyLlamaConfig) -> None:
        super().__init__(config)
        self.copy_query = nn.Linear(config.hidden_size, config.copy_dim, bias=False)
        self.copy_key = nn.Linear(config.hidden_size, config.copy_dim, bias=False)
        self.copy_gate = nn.Linear(config.hidden_size, 1)
        self.copy_match_weight = nn.Parameter(torch.ones(()))  # per token of suffix match
        self.copy_cursor_bonus = nn.Parameter(torch.zeros(4))  # behind, at, +1, +2
        self.copy_used_penalty = nn.Parameter(torch.zeros(()))  # already written (coverage)
        buckets = config.progress_buckets * (PIECE_STATES if config.sentence_tokens else 1)
        # how many sentences of the context lie after the cursor, as a bias on the state
        self.copy_progress = nn.Embedding(buckets, config.hidden_size) if buckets else None
        # per query: how much of that progress to take in, and the bonus for jumping to the
        # start of the next sentence (large after a frame, small inside a copied sentence)
        self.copy_steer = nn.Linear(config.hidden_size, 2) if buckets else None
        # the pointer reads case-blind and may write a copied word in lower case ("The" -> "the")
        self.copy_case = nn.Linear(config.hidden_size, 1) if config.lower_token_ids else None
        self.post_init()
        with torch.no_grad():  # start as "attend where the state is like mine": induction
            self.copy_key.weight.copy_(self.copy_query.weight)
            if self.copy_progress is not None and self.copy_steer is not None:
                self.copy_progress.weight.zero_()
                self.copy_steer.weight.zero_()
                self.copy_steer.bias.zero_()
            if self.copy_case is not None:
                self.copy_case.bias.fill_(-2.0)  # start by copying words as written
        self.tables = TokenTables(config)

    # --- the pointer's memory: keys, token ids and mask of every position read so far
    def _pointer_memory(
        self,
        hidden: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        cache: Any,
        fresh: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Reading]:
        """(keys, ids, mask) of every position so far, this call's included, and the reading
        before this call (none yet on a fresh cache), sized to this call's positions."""
        keys = self.copy_key(hidden)
        state = None if cache is None or fresh else getattr(cache, _STATE, None)
        if state is not None:
            keys = torch.cat([state[0], keys], dim=1)
            ids = torch.cat([state[1], input_ids], dim=1)
            reading = state[2].grown(ids.shape[1] - 1)
        else:
            ids = input_ids
            reading = Reading.start(ids.shape[0], ids.shape[1] - 1, ids.device)
        total = ids.shape[1]
        if attention_mask is not None and attention_mask.shape[1] >= total:
            mask = attention_mask[:, -total:].bool()
        else:
            mask = torch.ones_like(ids, dtype=torch.bool)
        return keys, ids, mask, reading

    def _alignment(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, before: Reading
    ) -> Alignment:
        """For queries at ``positions``: the pointer's bonus over earlier positions, which
        positions it may point at, the reading after the last query, and the reading's progress
        (``copy_reading.progress``). The bonus adds up the suffix-match length; where each
        position lies from the reading cursor, the position of the latest confident match
        (``CONFIDENT`` tokens or more, in the prompt with ``cursor_reads_prompt``; before any, the
        start of the context): go on right after it, as a copying reader does; and whether the
        answer already wrote what follows it (coverage, See et al. 2017: do not copy a passage
        twice)."""
        ids = self.tables.lower(ids)  # case-blind: "the" written matches "The" read
        candidates = torch.arange(ids.shape[1] - 1, device=ids.device)
        allowed = (
            (candidates[None, None, :] < positions[None, :, None])
            & mask[:, None, :-1]
            & mask[:, None, 1:]
        )
        lengths = match_lengths(ids, positions, self.config.copy_match) * allowed
        moving = lengths
        if self.config.cursor_reads_prompt:  # a match in the answer itself moves no cursor
            read = candidates[None, :] < answer_begins(ids, self.config.answer_token_id)[:, None]
            moving = lengths * read[:, None, :]
        best, where = moving.max(dim=-1)  # the first (earliest) of the longest matches
        steps = torch.arange(positions.shape[0], device=ids.device)
        latest = torch.where(best >= CONFIDENT, steps, -1).cummax(dim=1).values
        cursors = torch.where(
            latest >= 0, where.gather(1, latest.clamp(min=0)), before.cursor[:, None]
        )
        start = first_position(ids, self.config.context_token_id)
        cursors = torch.where(cursors >= 0, cursors, start[:, None])
        used, reading = coverage(ids, positions, lengths, before, self.config.answer_token_id)
        behind, at, next1, next2 = self.copy_cursor_bonus
        back = (candidates[None, None, :] < cursors[:, :, None]) & (cursors[:, :, None] >= 0)
        bonus = lengths.float() * self.copy_match_weight + self.copy_used_penalty * used
        bonus = bonus + behind * back
        near = cursors[:, :, None] + torch.arange(3, device=ids.device)  # at, +1, +2
        reach = (cursors[:, :, None] >= 0) & (near < candidates.shape[0])
        ahead = torch.stack([at, next1, next2]).expand(near.shape) * reach
        bonus = bonus.scatter_add(-1, near.clamp(min=0, max=candidates.shape[0] - 1), ahead)
        buckets = next_unit = cuts = breaks = None
        if self.config.cut_long_sentences:
            heads, breaks = cut_points(ids, self.tables)
            cuts = heads[:, :-1]
        if self.copy_progress is not None:
            buckets, next_unit = progress(ids, positions, cursors, self.tables, breaks)
            next_unit = torch.where(next_unit < candidates.shape[0], next_unit, -1)
        reading = Reading(cursors[:, -1], reading.used, reading.pending)
        return Alignment(bonus, allowed, reading, buckets, next_unit, cuts)

    def _pointer_weights(
        self, queries: torch.Tensor, keys: torch.Tensor, bonus: torch.Tensor, allowed: torch.Tensor
    ) -> torch.Tensor:
        """The pointer's attention: learned match of the states plus the alignment bonus,
        softmaxed over the allowed positions (all zero where there is none)."""
        scores = queries @ keys[:, :-1].transpose(1, 2) / queries.shape[-1] ** 0.5
        scores = (scores.float() + bonus).masked_fill(~allowed, float("-inf"))
        return torch.nan_to_num(torch.softmax(scores, dim=-1))

    def mixture(
        self,
        hidden: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Any = None,
        fresh: bool = True,
        logits_to_keep: int = 0,
    ) -> torch.Tensor:
        """Log-probabilities of the mixture for the last ``logits_to_keep`` positions (all: 0)."""
        keys, ids, mask, reading = self._pointer_memory(
            hidden, input_ids, attention_mask, cache, fresh
        )
        positions = torch.arange(ids.shape[1] - hidden.shape[1], ids.shape[1], device=ids.device)
        if ids.shape[1] < 2:
            if cache is not None:
                setattr(cache, _STATE, (keys.detach(), ids, reading))
            return torch.log_softmax(self.lm_head(hidden).float(), dim=-1)
        found = self._alignment(ids, mask, positions, reading)
        if cache is not None:
            setattr(cache, _STATE, (keys.detach(), ids, found.reading))
        hidden, bonus = self._steer(hidden, found)
        allowed = found.allowed
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
            bonus, allowed = bonus[:, -logits_to_keep:], allowed[:, -logits_to_keep:]
        vocab = torch.log_softmax(self.lm_head(hidden).float(), dim=-1)
        weights = self._pointer_weights(self.copy_query(hidden), keys, bonus, allowed)
        copied = self._copied(vocab, ids[:, 1:], weights, hidden, found.cuts)
        gate = torch.sigmoid(self.copy_gate(hidden).float())
        has_source = (weights.sum(-1, keepdim=True) > 0).float()
        gate = gate * has_source + (1 - has_source)  # nothing to copy: the Llama alone
        mixed = torch.log(gate * vocab.exp() + (1 - gate) * copied + TINY)
        if cache is not None and not fresh:  # decoding one token at a time
            self._rule_out_specials(mixed[:, -1])
            guard_repeats(ids, mixed[:, -1], self.config.answer_token_id, self._list_items(ids))
            if self.tables.has("word_start"):
                guard_stutter(ids, mixed[:, -1], self.tables.get("word_start", ids.device))
        return mixed

    def _rule_out_specials(self, next_log_probs: torch.Tensor) -> None:
        """While decoding, rule out the special tokens but the end (the prompt's tags and
        markers, never in an answer). The pointer may still rest on a position they follow (where
        nothing is to be copied, as it learned to): that weight is what is ruled out. Before this
        rule a long answer that lost its place copied the tags after the context's last sentence,
        then the answer's own opening ("you'll want to knowSubject: Key points")."""
        if self.tables.has("special_token_ids"):  # the end is not in the table
            specials = self.tables.get("special_token_ids", next_log_probs.device)
            next_log_probs[:, specials] = float("-inf")

    def _list_items(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The ids that hold a line break and those of the list marker (for the repeat guard),
        or None for a config without them."""
        names = ("line_break_token_ids", "list_marker_token_ids")
        if not all(self.tables.has(name) for name in names):
            return None
        return self.tables.get(names[0], ids.device), self.tables.get(names[1], ids.device)

    def _copied(
        self,
        vocab: torch.Tensor,
        following: torch.Tensor,
        weights: torch.Tensor,
        hidden: torch.Tensor,
        cuts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The copy distribution: each position's weight on the token that followed it, or, by
        the case gate's share, on that token's lower-case twin; the weight on positions followed
        by a closing mark goes to the closing marks as the Llama (``vocab``, log-probabilities)
        ranks them (as does the weight on the end of a long sentence's head, ``cuts``)."""
        out = torch.zeros_like(vocab)
        weights, ending = self._closing_share(following, weights, cuts)
        if ending is not None:
            marks, ranked = self._closing_ranks(vocab)
            out[..., marks] = ending[..., None] * ranked
        spread = following[:, None, :].expand(-1, hidden.shape[1], -1)
        if self.copy_case is None:
            return out.scatter_add_(-1, spread, weights)
        lowered = torch.sigmoid(self.copy_case(hidden).float())
        out = out.scatter_add_(-1, spread, weights * (1 - lowered))
        return out.scatter_add_(-1, self.tables.lower(spread), weights * lowered)

    def _closing_share(
        self, following: torch.Tensor, weights: torch.Tensor, cuts: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The pointer's weights without the positions followed by a closing mark (or ending a
        cut's head, ``cuts``), and the weight those had (None for a model without closing
        marks)."""
        if not self.config.closing_token_ids:
            return weights, None
        marks = self.tables.get("closing_token_ids", following.device)
        closes = torch.isin(following, marks)
        if cuts is not None:
            closes = closes | cuts
        closes = closes[:, None, :] if weights.dim() == 3 else closes
        return weights * ~closes, (weights * closes).sum(-1)

    def _closing_ranks(self, vocab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The closing marks' ids and how the Llama (``vocab``, log-probabilities) ranks them."""
        marks = self.tables.get("closing_token_ids", vocab.device)
        return marks, torch.softmax(vocab[..., marks], dim=-1)

    def _steer(self, hidden: torch.Tensor, found: Alignment) -> tuple[torch.Tensor, torch.Tensor]:
        """The query-side state with the reading's progress taken in (by a learned share per
        query; keys stay as they are), and the bonus with the jump to the next sentence's start
        added (by a learned amount per query)."""
        if self.copy_progress is None or self.copy_steer is None or found.progress is None:
            return hidden, found.bonus
        assert found.next_unit is not None
        share, jump = self.copy_steer(hidden).float().unbind(-1)
        taken = torch.sigmoid(share)[..., None] * self.copy_progress(found.progress).float()
        hidden = hidden + taken.to(hidden.dtype)
        reach = (found.next_unit >= 0).float()
        bonus = found.bonus.scatter_add(
            -1, found.next_unit.clamp(min=0)[..., None], (jump * reach)[..., None]
        )
        return hidden, bonus

    def target_log_probs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        select: torch.Tensor,
        targets: torch.Tensor,
    ) -> torch.Tensor:
        """log p(target) at the positions ``select`` (a boolean mask of ``input_ids``' shape),
        for training: the copy term is gathered for the targets only, never spread over the
        vocabulary."""
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        positions = torch.arange(input_ids.shape[1], device=hidden.device)
        start = Reading.start(input_ids.shape[0], input_ids.shape[1] - 1, input_ids.device)
        found = self._alignment(input_ids, attention_mask.bool(), positions, start)
        keys = self.copy_key(hidden)
        hidden, bonus = self._steer(hidden, found)
        allowed = found.allowed
        queries = self.copy_query(hidden)
        scores = queries @ keys[:, :-1].transpose(1, 2) / self.config.copy_dim**0.5
        scores = (scores.float() + bonus).masked_fill(~allowed, float("-inf"))
        rows, cols = select.nonzero(as_tuple=True)
        scores = scores[rows, cols]
        weights = torch.nan_to_num(torch.softmax(scores, dim=-1))
        chosen = hidden[rows, cols]
        following = input_ids[rows, 1:]
        vocab = torch.log_softmax(self.lm_head(chosen).float(), dim=-1)
        own = vocab.gather(-1, targets[:, None]).squeeze(-1).exp()
        cuts = None if found.cuts is None else found.cuts[rows]
        weights, ending = self._closing_share(following, weights, cuts)
        copied = (weights * (following == targets[:, None])).sum(-1)
        if self.copy_case is not None:
            lowered = torch.sigmoid(self.copy_case(chosen).float())
            folded = (weights * (self.tables.lower(following) == targets[:, None])).sum(-1)
            copied = (1 - lowered[:, 0]) * copied + lowered[:, 0] * folded
        if ending is not None:
            marks, ranked = self._closing_ranks(vocab)
            is_mark = targets[:, None] == marks[None, :]
            copied = copied + ending * (ranked * is_mark).sum(-1)
        gate = torch.sigmoid(self.copy_gate(chosen).float()).squeeze(-1)
        gate = torch.where(weights.sum(-1) > 0, gate, torch.ones_like(gate))
        return torch.log(gate * own + (1 - gate) * copied + TINY)

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        if input_ids is None:
            raise ValueError("the copy model reads input_ids (it copies tokens, not embeddings)")
        cache = kwargs.pop("past_key_values", cache)
        fresh = cache is None or cache.get_seq_length() == 0
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            **kwargs,
        )
        keep = logits_to_keep if isinstance(logits_to_keep, int) else 0
        logits = self.mixture(
            outputs.last_hidden_state, input_ids, attention_mask, outputs.cache, fresh, keep
        )
        loss = None
        if labels is not None:
            shifted = labels[:, 1:]
            scored = shifted != -100
            loss = -logits[:, :-1][scored].gather(-1, shifted[scored][:, None]).mean()
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


AutoConfig.register(MODEL_TYPE, CopyLlamaConfig)
AutoModelForCausalLM.register(CopyLlamaConfig, CopyLlamaForCausalLM)
