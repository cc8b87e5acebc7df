"""The style model's architecture: a Llama with a pointer that copies from what it has read.

A causal LM whose next-token distribution mixes two: the Llama's own (``lm_head``), and a copy
distribution from a pointer over the sequence so far, the pointer-sentinel idea of Merity et al.
(2016) in its induction form: position ``t`` scores every earlier position ``j`` by
``q(h_t)·k(h_j)`` plus learned bonuses for how many tokens ending at ``j`` equal those ending
at ``t`` (an induction head's suffix match) and for where ``j`` lies from the reading cursor
(the latest confident match: go on right after it, not back), and puts that weight on the token
that *followed* ``j``; so the text goes on copying a passage, in order. A gate ``g(h_t)`` mixes
the two::

    p(w) = g · softmax(lm_head(h_t))[w] + (1 − g) · Σ_{j < t, x_{j+1} = w} softmax_j(score_tj)

``logits`` are the log of that mixture (already normalized), so generation, PEFT (LoRA on every
linear layer, the pointer's included), TRL's losses and the serving engine use it as any causal
LM. The pointer's keys, token ids and cursor ride on the generation cache object, so decoding
with a cache costs one query per new token; decoding also rules out a token that would write the
same four tokens a third time in one answer (a repeat guard, as servers' repetition penalties).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
from transformers.modeling_outputs import CausalLMOutputWithPast

MODEL_TYPE = "attune_copy_llama"
CONFIDENT = 3  # suffix-match length (tokens) that moves the reading cursor
REPEAT_SPAN, REPEAT_TIMES = 4, 2  # while decoding, no 4 tokens in a row a third time
_STATE = "_attune_pointer"
TINY = 1e-9


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


class CopyLlamaConfig(LlamaConfig):
    """A Llama configuration plus the pointer's width (``copy_dim``), how many tokens back its
    suffix match looks (``copy_match``), and the token after which the answer starts
    (``answer_token_id``, for the repeat guard)."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        copy_dim: int = 64,
        copy_match: int = 6,
        answer_token_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.copy_dim = copy_dim
        self.copy_match = copy_match
        self.answer_token_id = answer_token_id
        super().__init__(**kwargs)


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
        self.post_init()
        with torch.no_grad():  # start as "attend where the state is like mine": induction
            self.copy_key.weight.copy_(self.copy_query.weight)

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

    def _match_lengths(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """For each query position ``t`` and earlier position ``j``: how many tokens ending at
        ``j`` equal those ending at ``t`` (0 to ``copy_match``), the suffix match of an
        induction head, counted on the ids themselves."""
        candidates = torch.arange(ids.shape[1] - 1, device=ids.device)
        running = torch.ones(
            ids.shape[0], positions.shape[0], candidates.shape[0], dtype=torch.bool,
            device=ids.device,
        )  # fmt: skip
        lengths = torch.zeros(running.shape, dtype=torch.uint8, device=ids.device)
        for back in range(self.config.copy_match):
            q, k = positions - back, candidates - back
            same = ids[:, q.clamp(min=0)][:, :, None] == ids[:, k.clamp(min=0)][:, None, :]
            running = running & same & (q >= 0)[None, :, None] & (k >= 0)[None, None, :]
            lengths += running
        return lengths

    def _alignment(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, before: Reading
    ) -> tuple[torch.Tensor, torch.Tensor, Reading]:
        """For queries at ``positions``: the pointer's bonus over earlier positions, which
        positions it may point at, and the reading after the last query. The bonus adds up the
        suffix-match length; where each position lies from the reading cursor, the position of
        the latest confident match (``CONFIDENT`` tokens or more): go on right after it, as a
        copying reader does; and whether the answer already wrote what follows it (coverage,
        See et al. 2017: do not copy a passage twice)."""
        candidates = torch.arange(ids.shape[1] - 1, device=ids.device)
        allowed = (
            (candidates[None, None, :] < positions[None, :, None])
            & mask[:, None, :-1]
            & mask[:, None, 1:]
        )
        lengths = self._match_lengths(ids, positions) * allowed
        best, where = lengths.max(dim=-1)  # the first (earliest) of the longest matches
        steps = torch.arange(positions.shape[0], device=ids.device)
        latest = torch.where(best >= CONFIDENT, steps, -1).cummax(dim=1).values
        cursors = torch.where(
            latest >= 0, where.gather(1, latest.clamp(min=0)), before.cursor[:, None]
        )
        used, reading = self._coverage(ids, positions, lengths, before)
        behind, at, next1, next2 = self.copy_cursor_bonus
        back = (candidates[None, None, :] < cursors[:, :, None]) & (cursors[:, :, None] >= 0)
        bonus = lengths.float() * self.copy_match_weight + self.copy_used_penalty * used
        bonus = bonus + behind * back
        near = cursors[:, :, None] + torch.arange(3, device=ids.device)  # at, +1, +2
        reach = (cursors[:, :, None] >= 0) & (near < candidates.shape[0])
        ahead = torch.stack([at, next1, next2]).expand(near.shape) * reach
        bonus = bonus.scatter_add(-1, near.clamp(min=0, max=candidates.shape[0] - 1), ahead)
        return bonus, allowed, Reading(cursors[:, -1], reading.used, reading.pending)

    def _coverage(
        self, ids: torch.Tensor, positions: torch.Tensor, lengths: torch.Tensor, before: Reading
    ) -> tuple[torch.Tensor, Reading]:
        """Per query, which positions' next tokens the answer (what follows the last
        ``answer_token_id``) has already written after matching them; and the state to go on."""
        answer = self.config.answer_token_id
        width = ids.shape[1]
        if answer is None:
            begins = torch.full((ids.shape[0],), width, device=ids.device)
        else:
            marks = torch.where(ids == answer, torch.arange(width, device=ids.device), -1)
            latest = marks.max(dim=1).values
            begins = torch.where(latest >= 0, latest, width)
        in_answer = positions[None, :] >= begins[:, None]  # (b, Q)
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
        bonus, allowed, reading = self._alignment(ids, mask, positions, reading)
        if cache is not None:
            setattr(cache, _STATE, (keys.detach(), ids, reading))
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
            bonus, allowed = bonus[:, -logits_to_keep:], allowed[:, -logits_to_keep:]
        vocab = torch.log_softmax(self.lm_head(hidden).float(), dim=-1)
        weights = self._pointer_weights(self.copy_query(hidden), keys, bonus, allowed)
        copied = torch.zeros_like(vocab).scatter_add_(
            -1, ids[:, None, 1:].expand(-1, hidden.shape[1], -1), weights
        )
        gate = torch.sigmoid(self.copy_gate(hidden).float())
        has_source = (weights.sum(-1, keepdim=True) > 0).float()
        gate = gate * has_source + (1 - has_source)  # nothing to copy: the Llama alone
        mixed = torch.log(gate * vocab.exp() + (1 - gate) * copied + TINY)
        if cache is not None and not fresh:  # decoding one token at a time
            self._guard_repeats(ids, mixed[:, -1])
        return mixed

    def _guard_repeats(self, ids: torch.Tensor, next_log_probs: torch.Tensor) -> None:
        """While decoding: rule out a token that would make the same ``REPEAT_SPAN`` tokens occur
        a third time in the answer (after ``answer_token_id``): a small model that lost its
        place copies no loop."""
        answer = self.config.answer_token_id
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
            after = spans[(spans[:, :-1] == prefix).all(dim=1), -1]
            if after.numel():
                tokens, counts = after.unique(return_counts=True)
                next_log_probs[row, tokens[counts >= REPEAT_TIMES]] = float("-inf")

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
        bonus, allowed, _ = self._alignment(input_ids, attention_mask.bool(), positions, start)
        queries, keys = self.copy_query(hidden), self.copy_key(hidden)
        scores = queries @ keys[:, :-1].transpose(1, 2) / self.config.copy_dim**0.5
        scores = (scores.float() + bonus).masked_fill(~allowed, float("-inf"))
        rows, cols = select.nonzero(as_tuple=True)
        scores = scores[rows, cols]
        weights = torch.nan_to_num(torch.softmax(scores, dim=-1))
        copied = (weights * (input_ids[rows, 1:] == targets[:, None])).sum(-1)
        chosen = hidden[rows, cols]
        vocab = torch.log_softmax(self.lm_head(chosen).float(), dim=-1)
        own = vocab.gather(-1, targets[:, None]).squeeze(-1).exp()
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
