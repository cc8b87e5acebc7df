"""A user's layer switches: which personalization layers Attune may apply to their answers."""

from __future__ import annotations

from django.db import models

from apps.common.models import OwnedModel
from core.serving import LAYERS


class LayerSettings(OwnedModel):
    """One row per user (none means every layer on). Built on :class:`OwnedModel` so that the
    user's data export holds it and erasure removes it without being told. A request's
    ``attune.layers`` can turn a layer off on top of this, never on."""

    memory = models.BooleanField(
        default=True,
        help_text="Preferences learned from your edits, retrieved for similar texts (CIPHER "
        "memory).",
    )
    persona = models.BooleanField(
        default=True, help_text="Your persona profile, given to the model with every request."
    )
    adapter = models.BooleanField(
        default=True,
        help_text="Your own fine-tuned adapter (LoRA), once Attune has fitted one from your "
        "feedback.",
    )
    vectors = models.BooleanField(
        default=True,
        help_text="Your style sliders: the preference vectors, weighted by your coefficients η.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "layer settings"
        verbose_name_plural = "layer settings"
        constraints = [
            models.UniqueConstraint(fields=["user"], name="generation_one_layer_settings_per_user")
        ]

    def switches(self) -> dict[str, bool]:
        """``{layer: on}`` for every layer of :data:`core.serving.LAYERS`."""
        return {layer: bool(getattr(self, layer)) for layer in LAYERS}

    @classmethod
    def description(cls, layer: str) -> str:
        """One line saying what ``layer`` does (the field's help text: one place for it)."""
        return str(cls._meta.get_field(layer).help_text)

    def __str__(self) -> str:
        off = [layer for layer, on in self.switches().items() if not on]
        return f"Layers of {self.user_id}: " + (f"off {', '.join(off)}" if off else "all on")
