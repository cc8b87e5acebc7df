"""The contract between the web process and the serving process: typed, with one set of defaults.

The web side (``apps.generation``) checks a request, builds a :class:`GenerateRequest` and POSTs
``request.to_payload()`` to ``GENERATE_PATH`` with the shared :func:`serving_key`. The serving
process (``workers.serving``) reads it back with :meth:`GenerateRequest.from_payload`, asks
``apps.generation.selectors.plan_for`` for the user's :class:`Plan` (their adapter, their η for
each preference vector, their CIPHER preference, their persona) and runs it. Nothing here imports
Django or torch.

η (eta) is the weight of a preference vector: ``θ = θ_base + Σ ηᵢ φᵢ``. The public API names the
same numbers "preference coefficients" (``/api/preference-coefficients``, an Interaction's
``preference_coefficients``); inside the code they are always ``eta`` / ``etas``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from core.errors import GenerationError

GENERATE_PATH = "/internal/generate"
PERSONALIZED_MODEL = "attune"
BASE_MODEL = "attune-base"
LAYERS = ("memory", "persona", "adapter", "vectors")
"""The personalization layers a user (a per-user setting) or a request (``attune.layers``) can
turn off: CIPHER memory, the persona profile, the user's own LoRA, the preference vectors (η)."""
OFF_BY_USER = "user"
OFF_BY_REQUEST = "request"
OFF_BY_ARBITRATION = "arbitration"  # left out for this user by the evidence of their edits


def serving_key(secret_key: str, configured: str = "") -> str:
    """The key the web process and the serving process share: ``ATTUNE_SERVING_KEY`` when set,
    else derived from Django's ``SECRET_KEY``."""
    if configured:
        return configured
    return hmac.new(secret_key.encode(), b"attune-serving", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class GenerationParams:
    """Everything that decides one generation besides the user and the messages (OpenAI's
    defaults; ``max_tokens=None`` lets the serving process choose, and ``temperature`` /
    ``top_p`` None take the model's own: ``Engine.sampling_defaults``)."""

    model: str = PERSONALIZED_MODEL
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def personalized(self) -> bool:
        return self.model == PERSONALIZED_MODEL

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stop": list(self.stop)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationParams:
        """Parameters as :meth:`to_dict` wrote them; a missing field takes its default."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        if "stop" in values:
            values["stop"] = tuple(values["stop"])
        try:
            return cls(**values)
        except TypeError as err:
            raise GenerationError(f"Malformed generation parameters: {err}") from err


@dataclass(frozen=True)
class GenerateRequest:
    """One generation the web process asks of the serving process, for an authenticated user."""

    user_id: int
    messages: tuple[dict[str, str], ...]
    params: GenerationParams = GenerationParams()
    stream: bool = False
    layers_off: tuple[str, ...] = ()  # layers this request turns off (on top of the user's)
    layers_kept: tuple[str, ...] = ()  # layers this request keeps: arbitration leaves them in

    def to_payload(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "messages": list(self.messages),
            "params": self.params.to_dict(),
            "stream": self.stream,
            "layers_off": list(self.layers_off),
            "layers_kept": list(self.layers_kept),
        }

    @classmethod
    def from_payload(cls, payload: Any) -> GenerateRequest:
        """The request a payload carries; a malformed one raises :class:`GenerationError` (400)."""
        if (
            not isinstance(payload, Mapping)
            or not isinstance(payload.get("params"), Mapping)
            or not isinstance(payload.get("messages"), list)
        ):
            raise GenerationError("Malformed generation request.")
        layers_off, layers_kept = payload.get("layers_off") or [], payload.get("layers_kept") or []
        for layers in (layers_off, layers_kept):
            if not isinstance(layers, list) or any(layer not in LAYERS for layer in layers):
                raise GenerationError("Malformed generation request: unknown layers.")
        return cls(
            payload.get("user_id"),
            tuple(dict(m) for m in payload["messages"]),
            GenerationParams.from_dict(payload["params"]),
            bool(payload.get("stream")),
            tuple(layer for layer in LAYERS if layer in layers_off),
            tuple(layer for layer in LAYERS if layer in layers_kept),
        )


@dataclass(frozen=True)
class AdapterRef:
    """A user's active adapter version, as the serving process loads it from the store."""

    label: str
    path: str
    base_model: str
    fingerprint: str


@dataclass(frozen=True)
class VectorRef:
    """One active preference vector (its two poles in the store) and the user's η for it."""

    name: str
    version: int
    positive_path: str
    negative_path: str
    base_model: str
    fingerprint: str
    eta: float


@dataclass(frozen=True)
class Plan:
    """The personalization of one request (empty for the base model)."""

    user_id: int
    personalized: bool
    adapter: AdapterRef | None = None
    vectors: tuple[VectorRef, ...] = ()
    preference: str = ""
    memory_ids: tuple[int, ...] = ()
    persona: str = ""
    memory_degraded: str = ""  # why the memory's aggregation fell back to one entry (or "")
    # the layers turned off, each with who turned it off (OFF_BY_USER, _REQUEST, _ARBITRATION)
    layers_off: tuple[tuple[str, str], ...] = ()
    # the context's embedding when retrieval computed it (stored with the answer: no second pass)
    context_embedding: tuple[float, ...] = ()

    @property
    def etas(self) -> dict[str, float]:
        return {v.name: v.eta for v in self.vectors}

    def layers_applied(self, adapter_label: str, etas: Mapping[str, float]) -> list[str]:
        """The layers that shaped the answer, in :data:`LAYERS` order. The adapter and the
        vectors count only as the weights provider applied them (``adapter_label``, ``etas``: a
        stored adapter that fails verification is left out)."""
        used = {
            "memory": bool(self.memory_ids),
            "persona": bool(self.persona),
            "adapter": bool(adapter_label),
            "vectors": bool(etas),
        }
        return [layer for layer in LAYERS if self.personalized and used[layer]]

    def layers_report(self, adapter_label: str, etas: Mapping[str, float]) -> dict[str, Any]:
        """The answer's ``attune.layers``: ``applied`` (names) and ``off`` (name -> who)."""
        return {
            "applied": self.layers_applied(adapter_label, etas),
            "off": dict(self.layers_off),
        }

    def weights_key(self) -> str:
        """Names the composed weights: the adapter version and each (vector, version, η)."""
        data = {
            "adapter": asdict(self.adapter) if self.adapter else None,
            "vectors": sorted((v.name, v.version, v.eta) for v in self.vectors),
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def describe_progress(progress: dict[str, Any]) -> str:
    """A person's reading of a serving process's ``loading`` report (``/healthz``), e.g.
    "building the built-in style model (38%, step 420 of 1100)"."""
    text = str(progress.get("stage") or "loading the model")
    if isinstance(progress.get("fraction"), int | float):
        step, steps = progress.get("step"), progress.get("steps")
        text += f" ({progress['fraction']:.0%}, step {step} of {steps})"
    return text
