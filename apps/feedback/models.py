"""What users told Attune about its outputs: interactions, ratings, edits and A/B comparisons.

An :class:`Interaction` records one generation and exactly what personalized it. Ratings and edits
point at the interaction they judge; a comparison holds two responses to one prompt. Every row
belongs to a user (:class:`apps.common.models.OwnedModel`); deleting an interaction deletes its
ratings and edits.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from pgvector.django import HnswIndex

from apps.common.models import EmbeddedModel, OwnedModel


def seek_index(prefix: str) -> models.Index:
    """A user's rows newest first, as the lists sort them: a list's cursor seeks on it, and a
    deep offset reads its ids from it instead of sorting the user's rows
    (``apps.common.pagination``)."""
    return models.Index(name=f"{prefix}_user_time_id", fields=["user", "-created_at", "-id"])


EDIT_IS_PAIR = ~models.Q(distance=0) & ~models.Q(edited=models.F("original"))
"""An edit that is a preference pair (the edited text over the original): it changed something."""
COMPARISON_IS_PAIR = ~models.Q(choice="tie") & ~models.Q(response_a=models.F("response_b"))
"""A comparison that is a preference pair: decided, between two different texts."""


def pair_index(prefix: str, is_pair: models.Q) -> models.Index:
    """A user's preference pairs in id order (``is_pair``: :data:`EDIT_IS_PAIR` or
    :data:`COMPARISON_IS_PAIR`, the rules ``apps.feedback.selectors`` reads pairs by): "are there
    n new pairs since the last fit?" (the adapter trigger, after every edit and comparison) reads
    the user's n newest entries here, whatever the user's history
    (``apps.feedback.selectors.new_pair_count``)."""
    return models.Index(name=f"{prefix}_user_pair", fields=["user", "id"], condition=is_pair)


def _embedding_indexes(prefix: str) -> list[models.Index]:
    """Cosine k-NN over embeddings, and the embedding task's scan for rows still to embed."""
    return [
        HnswIndex(
            name=f"{prefix}_emb_hnsw",
            fields=["embedding"],
            m=16,
            ef_construction=64,
            opclasses=["vector_cosine_ops"],
        ),
        models.Index(
            name=f"{prefix}_emb_pending",
            fields=["id"],
            condition=models.Q(embedding__isnull=True),
        ),
    ]


class Interaction(OwnedModel, EmbeddedModel):
    """One generation shown to a user: prompt, output, and what personalized it.

    ``prompt`` is the text the model saw (chat ``messages`` flattened); its embedding is the
    context embedding that memory retrieval compares. ``adapter_version``, ``memory_entry_ids``
    and the rest record the personalization used, so feedback can be traced back to it.
    """

    prompt = models.TextField()
    messages = models.JSONField(default=list, blank=True, help_text="Chat messages, if any.")
    source = models.CharField(
        max_length=64, blank=True, default="", help_text="Context source, e.g. news, email."
    )
    output = models.TextField()
    model_id = models.CharField(max_length=200, blank=True, default="")
    adapter_version = models.CharField(
        max_length=100, blank=True, default="", help_text="Label of the LoRA adapter used."
    )
    preference_coefficients = models.JSONField(
        default=dict, blank=True, help_text="Preference-vector coefficients η by name."
    )
    memory_entry_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    conditioning_preference = models.TextField(blank=True, default="")
    layers = ArrayField(
        models.CharField(max_length=16),
        default=list,
        db_default=[],  # rows written in SQL (bulk fills, older writers) get none too
        blank=True,
        help_text="The personalization layers that shaped this output (memory, persona, "
        "adapter, vectors); empty for the base model and for rows older than the field.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            seek_index("fb_interaction"),
            models.Index(name="fb_interaction_user_source", fields=["user", "source"]),
            *_embedding_indexes("fb_interaction"),
        ]

    def embedding_text(self) -> str:
        return self.prompt

    def __str__(self) -> str:
        return f"Interaction {self.pk} of {self.user_id}"


class Rating(OwnedModel):
    """A user's judgement of an interaction: thumbs up/down or 1-5 stars; one per interaction."""

    interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="ratings")
    thumbs_up = models.BooleanField(null=True, blank=True)
    stars = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "interaction"], name="fb_one_rating_per_user"),
            models.CheckConstraint(
                name="fb_rating_thumbs_xor_stars",
                condition=(
                    models.Q(thumbs_up__isnull=False, stars__isnull=True)
                    | models.Q(thumbs_up__isnull=True, stars__gte=1, stars__lte=5)
                ),
            ),
        ]
        indexes = [seek_index("fb_rating")]

    def __str__(self) -> str:
        return f"Rating {self.pk} of interaction {self.interaction_id}"


class Edit(OwnedModel):
    """A user's revision of an interaction's output, with its word-level edit cost and diff.

    ``distance`` is the word-level Levenshtein distance from ``original`` to ``edited``; an edit
    that changes no word is kept as a no-op (distance 0), which is a signal too.
    """

    interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="edits")
    original = models.TextField()
    edited = models.TextField()
    distance = models.PositiveIntegerField()
    diff = models.JSONField(
        default=list, help_text="Word diff: [{op, text}], op in equal/delete/insert."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            seek_index("fb_edit"),
            pair_index("fb_edit", EDIT_IS_PAIR),
        ]

    @property
    def is_noop(self) -> bool:
        return self.distance == 0

    def __str__(self) -> str:
        return f"Edit {self.pk} of interaction {self.interaction_id}"


class Comparison(OwnedModel, EmbeddedModel):
    """Two responses to one prompt and the user's choice between them (A, B or a tie).

    The texts are stored even when the responses came from interactions, so a comparison outlives
    them; the prompt is embedded like an interaction's.
    """

    class Choice(models.TextChoices):
        A = "a", "A"
        B = "b", "B"
        TIE = "tie", "Tie"

    prompt = models.TextField()
    source = models.CharField(max_length=64, blank=True, default="")
    response_a = models.TextField()
    response_b = models.TextField()
    interaction_a = models.ForeignKey(
        Interaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    interaction_b = models.ForeignKey(
        Interaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    choice = models.CharField(max_length=3, choices=Choice.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            seek_index("fb_comparison"),
            pair_index("fb_comparison", COMPARISON_IS_PAIR),
            *_embedding_indexes("fb_comparison"),
        ]

    def embedding_text(self) -> str:
        return self.prompt

    def __str__(self) -> str:
        return f"Comparison {self.pk} ({self.choice})"
