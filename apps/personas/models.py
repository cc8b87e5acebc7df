"""A user's persona profile: free text and structured attributes, embedded for cold start."""

from __future__ import annotations

import json

from django.db import models
from pgvector.django import HnswIndex

from apps.common.models import EmbeddedModel, OwnedModel


class PersonaProfile(OwnedModel, EmbeddedModel):
    """What a user says about themselves (one profile per user).

    ``attributes`` holds structured facts (e.g. ``{"role": "teacher", "tone": "casual"}``); the
    embedding covers the text and the attributes together.
    """

    text = models.TextField(blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user"], name="personas_one_per_user")]
        indexes = [
            HnswIndex(
                name="personas_emb_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            models.Index(
                name="personas_emb_pending",
                fields=["id"],
                condition=models.Q(embedding__isnull=True),
            ),
        ]

    def embedding_text(self) -> str:
        lines = [self.text.strip()] if self.text.strip() else []
        for key, value in sorted(self.attributes.items()):
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            lines.append(f"{key}: {shown}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return f"Persona of {self.user_id}"
