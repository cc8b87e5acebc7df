"""One request in the serving process, from the user's id to the recorded Interactions.

``prepare``: load the user → what personalizes them (``apps.generation.selectors.plan_for``:
active adapter, η, CIPHER preference for this context, persona, less the layers the user or the
request turned off) → their composed weights (cache)
→ the prompt (persona and preference in it) → token count against the context window (a last
user message too long for it is cut after a sentence, and the answer says so).
``run``: the request's ``n`` rows go to the scheduler (batched with other users' rows), new text
streams out as it comes, ``n > 1`` candidates are reranked by the user's personalized reward when
one exists, and one Interaction per choice records exactly what was used.
"""

from __future__ import annotations

import logging
import queue
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from apps.accounts.models import User
from apps.feedback.services import flatten_messages
from apps.generation.selectors import plan_for
from apps.generation.services import record_choices
from apps.memory.selectors import degraded_notice
from core import config
from core.errors import GenerationError
from core.prompting import is_style_tokenizer
from core.serving import GenerateRequest, GenerationParams, Plan
from workers.collab.reranking import personalized_scores
from workers.serving.engine import Engine, Row, RowEvent
from workers.serving.prompts import (
    Cut,
    UserContext,
    fit_to_window,
    render_prompt,
    uses_special_tokens,
)
from workers.serving.scheduler import Scheduler
from workers.serving.weights import Applied, WeightsProvider

log = logging.getLogger(__name__)
Write = Callable[[dict[str, Any]], None]
Scorer = Callable[[int, str, list[str]], "list[float] | None"]
STYLE_ANSWER_EXTRA = 128  # the style model's answer: its input's sentences, plus frames and lines


def rank(
    user_id: int, prompt: str, candidates: list[str], scorer: Scorer
) -> tuple[list[int], list[float] | None]:
    """Candidate indices best first by ``scorer`` (ties and no scores keep their order)."""
    order = list(range(len(candidates)))
    try:
        scores = scorer(user_id, prompt, candidates)
    except Exception:  # the reward model must never fail a generation
        log.exception("reranking for user %s failed; candidates keep their order", user_id)
        return order, None
    if scores is None or len(scores) != len(candidates):
        return order, None
    scores = [float(s) for s in scores]
    return sorted(order, key=lambda i: -scores[i]), scores


@dataclass
class Prepared:
    id: str
    created: int
    user: User
    messages: list[dict[str, str]]
    params: GenerationParams
    stream: bool
    plan: Plan
    applied: Applied
    prompt: str
    prompt_ids: list[int]
    max_tokens: int
    cut: Cut | None = None


def sampling(params: GenerationParams, defaults: tuple[float, float]) -> tuple[float, float]:
    """The (temperature, top_p) rows run with: what the request names, else the model's own
    ``defaults``; ``n > 1`` candidates of a model that decodes greedily by default are sampled at
    ``CANDIDATES_TEMPERATURE`` (greedy decoding writes one text n times)."""
    temperature, top_p = defaults
    if params.n > 1 and temperature == 0.0:
        temperature = config.CANDIDATES_TEMPERATURE
    return (
        temperature if params.temperature is None else params.temperature,
        top_p if params.top_p is None else params.top_p,
    )


class ServingService:
    """The local backend: the engine and its scheduler in this process."""

    backend = "local"

    def __init__(
        self,
        engine: Engine,
        scheduler: Scheduler,
        weights: WeightsProvider,
        base_model: str,
        default_max_tokens: int = 256,
        timeout: float = 300.0,
        scorer: Scorer = personalized_scores,
    ) -> None:
        self.engine = engine
        self.scheduler = scheduler
        self.weights = weights
        self.base_model = base_model
        self.default_max_tokens = default_max_tokens
        self.timeout = timeout
        self.scorer = scorer

    # --- prepare: everything that can refuse the request happens before the answer starts
    def load(self, request: GenerateRequest) -> tuple[User, list[dict[str, str]], Plan]:
        user = User.objects.filter(pk=request.user_id, is_active=True).first()
        if user is None:
            raise GenerationError("Unknown or inactive user.", status=401, code="invalid_user")
        messages = list(request.messages)
        plan = plan_for(
            user, messages, request.params.personalized, request.layers_off, request.layers_kept
        )
        return user, messages, plan

    def prepare(self, request: GenerateRequest) -> Prepared:
        user, messages, plan = self.load(request)
        params = request.params
        applied = self.weights.weights(plan)
        tokenizer = self.engine.tokenizer
        context = UserContext(plan.persona, plan.preference)
        special = uses_special_tokens(tokenizer)
        window, asked = self.engine.context_length, params.max_tokens
        restyles = is_style_tokenizer(tokenizer)  # its answer is about as long as its input

        def encode(candidate: Sequence[dict[str, str]]) -> list[int]:
            prompt = render_prompt(tokenizer, candidate, context)
            return list(tokenizer(prompt, add_special_tokens=special)["input_ids"])

        def needs(prompt_tokens: int) -> int:
            if asked is not None:
                return asked
            return prompt_tokens + STYLE_ANSWER_EXTRA if restyles else 1

        messages, ids, cut = fit_to_window(
            messages, encode, lambda n: n + needs(n) <= window, window
        )
        room = window - len(ids)
        if room < needs(len(ids)):
            wanted = f"{len(ids)} in the messages" + (
                f", {asked} in the completion" if asked else ""
            )
            raise GenerationError(
                f"This model's maximum context length is {window} tokens; the request needs "
                f"more ({wanted}). Shorten the messages or lower max_tokens.",
                param="messages",
                code="context_length_exceeded",
            )
        default = (
            max(self.default_max_tokens, needs(len(ids))) if restyles else (self.default_max_tokens)
        )
        max_tokens = asked if asked is not None else min(default, room)
        prompt = render_prompt(tokenizer, messages, context)
        return Prepared(
            f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), user, messages, params,
            request.stream, plan, applied, prompt, ids, max_tokens, cut,
        )  # fmt: skip

    # --- run: stream, rerank, record, finish
    def start_event(self, p: Prepared) -> dict[str, Any]:
        return {
            "type": "start",
            "id": p.id,
            "created": p.created,
            "model": p.params.model,
            "n": p.params.n,
        }

    def generate(self, p: Prepared, write: Write) -> list[RowEvent] | None:
        """Run the rows; returns each choice's final event, or None after an error event."""
        events: queue.Queue[tuple[int, RowEvent]] = queue.Queue()
        params = p.params
        temperature, top_p = sampling(params, self.engine.sampling_defaults)
        rows = [
            Row(
                prompt_ids=p.prompt_ids,
                lora=p.applied.weights,
                max_tokens=p.max_tokens,
                temperature=temperature,
                top_p=top_p,
                stop=params.stop,
                seed=None if params.seed is None else params.seed + i,
                stream=p.stream,
                sink=lambda event, i=i: events.put((i, event)),
            )
            for i in range(params.n)
        ]
        self.scheduler.submit(rows)
        results: dict[int, RowEvent] = {}
        try:
            while len(results) < len(rows):
                i, event = events.get(timeout=self.timeout)
                if event.kind == "delta":
                    write({"type": "delta", "index": i, "text": event.text})
                elif event.kind == "done":
                    results[i] = event
                else:
                    write(_error_event(event.text))
                    return None
        except queue.Empty:
            write(_error_event("generation timed out"))
            return None
        finally:
            for row in rows:  # a client gone or an error: free the batch slots
                if not row.done:
                    row.cancelled.set()
        return [results[i] for i in range(len(rows))]

    def run(self, p: Prepared, write: Write) -> None:
        write(self.start_event(p))
        results = self.generate(p, write)
        if results is None:
            return
        self.finish(p, [r.text for r in results], [r.finish_reason for r in results],
                    len(p.prompt_ids), sum(r.tokens for r in results), write)  # fmt: skip

    def finish(
        self,
        p: Prepared,
        texts: Sequence[str],
        reasons: Sequence[str],
        prompt_tokens: int,
        completion_tokens: int,
        write: Write,
    ) -> None:
        texts = [text.replace("\x00", "") for text in texts]  # a remote server's NULs too
        prompt_text = flatten_messages(p.messages)
        order, scores = list(range(len(texts))), None
        if len(texts) > 1 and p.plan.personalized:
            order, scores = rank(p.user.pk, prompt_text, list(texts), self.scorer)
        shown = order if not p.stream else list(range(len(texts)))  # streamed indices stay
        plan, applied = p.plan, p.applied
        ids = record_choices(
            p.user, p.messages, [texts[i] for i in shown],
            model_id=self.base_model,
            adapter_version=applied.adapter_label,
            preference_coefficients=applied.etas,
            memory_entry_ids=plan.memory_ids,
            conditioning_preference=plan.preference,
            layers=plan.layers_applied(applied.adapter_label, applied.etas),
            embedding=plan.context_embedding,
        )  # fmt: skip
        choices = [
            {"index": k, "text": texts[i], "finish_reason": reasons[i], "interaction_id": ids[k]}
            for k, i in enumerate(shown)
        ]
        write(
            {
                "type": "done",
                "id": p.id,
                "created": p.created,
                "model": p.params.model,
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                "attune": {
                    "interaction_ids": ids,
                    "personalized": plan.personalized,
                    "adapter_version": applied.adapter_label or None,
                    "preference_coefficients": applied.etas,
                    "memory_entry_ids": list(plan.memory_ids),
                    "conditioning_preference": plan.preference,
                    "persona": bool(plan.persona),
                    # the layers that shaped it, and those off (layer -> "user" or "request")
                    "layers": plan.layers_report(applied.adapter_label, applied.etas),
                    "reranked": scores is not None,
                    # choice indices best first, and each returned choice's reward
                    "ranking": [shown.index(i) for i in order] if scores is not None else None,
                    "scores": [scores[i] for i in shown] if scores is not None else None,
                    "backend": self.backend,
                    "base_model": self.base_model,
                    "context_cut": p.cut.as_dict() if p.cut else None,
                    # the memory's aggregation failed: its reason, and the one entry used
                    "memory_degraded": degraded_notice(plan.memory_degraded),
                },
            }
        )


def _error_event(message: str, status: int = 500) -> dict[str, Any]:
    return {
        "type": "error",
        "status": status,
        "error": {"message": message, "type": "server_error", "param": None, "code": None},
    }
