"""Personalized generation for a user: the entry points of the web side (API and web UI), and
the recording of what was generated (called by the serving process).

Stable interface for callers (the API, the web UI)::

    completion = generate(user, messages, model="attune", max_tokens=None, temperature=None,
                          top_p=None, n=None, stop=None, seed=None, layers=None)
    completion.choices[0].text, completion.choices[0].interaction_id, completion.usage

    stream = generate_stream(user, messages, **same_params)   # raises before any token on error
    for event in stream:        # Delta(index, text) …, then one Completion (ids, usage)
        ...
    stream.close()              # cancels a generation still running

``messages`` are OpenAI chat messages (``[{"role": "user", "content": "…"}]``); ``layers``
(``{"memory": False, …}``) turns layers off for this request on top of the user's own switches
(:func:`set_layers`). Every problem
raises :class:`core.errors.GenerationError` (``status``, ``message``, ``param``,
``code``): bad parameters 400, unknown model 404, over-long input 400
(``context_length_exceeded``), serving process down 503, fair use (:func:`_take_slots`) 429
with a ``retry_after``. The web process never imports torch:
generation runs in the serving process (``workers.serving``), which records one
:class:`apps.feedback.models.Interaction` per returned choice; its id is on the choice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.accounts.models import User
from apps.common.throttling import Slots, take_slots
from apps.feedback.models import Interaction
from apps.feedback.services import create_interaction
from apps.generation import client, params
from apps.generation.models import LayerSettings
from core.errors import GenerationError, InvalidValue, unavailable
from core.prompting import instruction_source
from core.serving import LAYERS, GenerateRequest


@dataclass(frozen=True)
class Choice:
    index: int
    text: str
    finish_reason: str
    interaction_id: int | None


@dataclass(frozen=True)
class Completion:
    """A finished generation. ``attune`` says what personalized it: ``interaction_ids``,
    ``adapter_version``, ``preference_coefficients``, ``memory_entry_ids``,
    ``conditioning_preference``, ``persona``, ``layers`` (``applied`` and ``off``: layer ->
    ``"user"`` or ``"request"``), ``reranked`` and ``ranking``, and ``context_cut`` when the last
    user message was cut after a sentence to fit the window."""

    id: str
    created: int
    model: str
    choices: tuple[Choice, ...]
    usage: dict[str, int]
    attune: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.choices[0].text if self.choices else ""

    @property
    def interaction_ids(self) -> list[int | None]:
        return [c.interaction_id for c in self.choices]


@dataclass(frozen=True)
class Delta:
    """New text of choice ``index`` while streaming."""

    index: int
    text: str


@dataclass(frozen=True)
class Started:
    """The generation was accepted: its id, creation time and model (first streamed event)."""

    id: str
    created: int
    model: str
    n: int


def completion_from_event(event: Mapping[str, Any]) -> Completion:
    choices = tuple(
        Choice(c["index"], c["text"], c["finish_reason"], c.get("interaction_id"))
        for c in event["choices"]
    )
    return Completion(
        event["id"], event["created"], event["model"], choices, event["usage"], event["attune"]
    )


class CompletionStream:
    """An accepted streaming generation: yields :class:`Started`, :class:`Delta` events, then
    one :class:`Completion`. ``close()`` cancels it (and frees its fair-use slots)."""

    def __init__(
        self, events: client.EventStream, on_close: Callable[[], None] = lambda: None
    ) -> None:
        self._events = events
        self._on_close = on_close

    def __iter__(self) -> Iterator[Started | Delta | Completion]:
        finished = False
        for event in self._events:
            kind = event.get("type")
            if kind == "start":
                yield Started(event["id"], event["created"], event["model"], event["n"])
            elif kind == "delta":
                yield Delta(event["index"], event["text"])
            elif kind == "done":
                finished = True
                yield completion_from_event(event)
            elif kind == "error":
                raise GenerationError.from_dict(event, int(event.get("status", 500)))
        if not finished:
            raise unavailable("The generation service ended the answer early.")

    def close(self) -> None:
        try:
            self._events.close()
        finally:
            self._on_close()


def _request(
    user: User, messages: Sequence[Mapping[str, Any]], options: Mapping[str, Any], stream: bool
) -> GenerateRequest:
    """The checked request for the serving process (raises :class:`GenerationError`)."""
    options = dict(options)
    layers = params.check_layers(options.pop("layers", None))
    checked = params.check(**options)
    return GenerateRequest(
        user.pk, tuple(params.message_list(messages)), checked, stream,
        params.layers_off(layers), params.layers_kept(layers),
    )  # fmt: skip


def _take_slots(user: User) -> Slots:
    """Fair use while a generation waits on the serving process: one of the user's
    ``ATTUNE_GENERATION_USER_CONCURRENCY`` slots across every web process (429 beyond) and one
    of this process's ``ATTUNE_GENERATION_PROCESS_CONCURRENCY`` (429 beyond), so a burst of
    generations can neither crowd out the user's other requests nor take every thread of a web
    process from the rest of the API. Held until the answer is complete or closed."""
    return take_slots(
        "generation",
        user.pk,
        user_limit=settings.ATTUNE_GENERATION_USER_CONCURRENCY,
        process_limit=settings.ATTUNE_GENERATION_PROCESS_CONCURRENCY,
        retry_after=settings.ATTUNE_GENERATION_RETRY_AFTER,
    )


def generate_stream(
    user: User, messages: Sequence[Mapping[str, Any]], **options: Any
) -> CompletionStream:
    """Start a streaming generation (see the module docstring); errors raise here, before any
    event. Close the stream when done with it: that frees its slots."""
    request = _request(user, messages, options, True)
    slots = _take_slots(user)
    try:
        return CompletionStream(client.open_stream(request), on_close=slots.release)
    except BaseException:
        slots.release()
        raise


def generate(user: User, messages: Sequence[Mapping[str, Any]], **options: Any) -> Completion:
    """One finished generation with ``n`` choices (reranked by the user's reward when one
    exists); see the module docstring."""
    request = _request(user, messages, options, False)
    slots = _take_slots(user)
    try:
        stream = CompletionStream(client.open_stream(request))
        for event in stream:
            if isinstance(event, Completion):
                return event
    finally:
        slots.release()
    raise unavailable("The generation service ended the answer early.")


def record_choices(
    user: User,
    messages: Sequence[Mapping[str, str]],
    outputs: Sequence[str],
    *,
    model_id: str,
    adapter_version: str,
    preference_coefficients: Mapping[str, float],
    memory_entry_ids: Sequence[int],
    conditioning_preference: str,
    layers: Sequence[str] = (),
    embedding: Sequence[float] = (),
) -> list[int]:
    """Store one Interaction per output, with exactly the personalization that produced it;
    returns their ids in the order of ``outputs``. ``embedding``: the prompt's, when the
    serving process computed it for retrieval (else a worker embeds it after commit)."""
    users = [m["content"] for m in messages if m.get("role") == "user"]
    source = instruction_source(users[-1]) if users else ""
    ids = []
    for output in outputs:
        interaction: Interaction = create_interaction(
            user,
            output=output,
            messages=[dict(m) for m in messages],
            source=source,
            model_id=model_id,
            adapter_version=adapter_version,
            preference_coefficients=dict(preference_coefficients),
            memory_entry_ids=list(memory_entry_ids),
            conditioning_preference=conditioning_preference,
            layers=list(layers),
            embedding=embedding,
        )
        ids.append(interaction.pk)
    return ids


@transaction.atomic
def set_layers(user: User, **switches: bool) -> LayerSettings:
    """Turn the user's personalization layers on or off (any of ``memory``, ``persona``,
    ``adapter``, ``vectors``; the others keep their value). The next generation follows."""
    for name, on in switches.items():
        if name not in LAYERS:
            raise InvalidValue(name, f"Unknown layer; the layers are {', '.join(LAYERS)}.")
        if not isinstance(on, bool):
            raise InvalidValue(name, "Must be true or false.")
    settings_row, _ = LayerSettings.objects.select_for_update().get_or_create(user=user)
    changed = [name for name, on in switches.items() if getattr(settings_row, name) != on]
    for name in changed:
        setattr(settings_row, name, bool(switches[name]))
    if changed:
        settings_row.save()
    return settings_row
