"""The one scoping pattern every app uses: rows belong to a user; queries start from that user.

Subclass :class:`OwnedModel` for anything a user owns. ``Model.objects.visible_to(user)`` is what a
user may read (their own rows; staff read everything) and ``Model.objects.owned_by(user)`` what they
may change (their own rows only, staff included). API views get both through
``apps.common.api.OwnedViewSetMixin``, so another user's object answers 404. A client app's end
users are ordinary (never staff) users inside that app's namespace, so the same rule keeps apps
apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from pgvector.django import VectorField

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


class OwnedQuerySet(models.QuerySet):
    def owned_by(self, user: AbstractBaseUser | AnonymousUser) -> OwnedQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(user=user)

    def visible_to(self, user: AbstractBaseUser | AnonymousUser) -> OwnedQuerySet:
        if getattr(user, "is_staff", False) and user.is_active:
            return self.all()
        return self.owned_by(user)


class OwnedModel(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="%(app_label)s_%(class)s_set",
    )

    objects: Any = OwnedQuerySet.as_manager()

    class Meta:
        abstract = True


EMBEDDING_DIMENSIONS = 384
"""Width of every embedding column (all-MiniLM-L6-v2); another width needs a migration."""


class EmbeddedModel(models.Model):
    """A row with a sentence embedding of its text, filled in later by a Celery worker.

    ``embedding`` is NULL until the worker has embedded :meth:`embedding_text`; the model name and
    dimension it used are stored beside the vector. Services that create or change the text clear
    the embedding and call :func:`apps.common.embeddings.schedule_embedding`.
    """

    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True, editable=False)
    embedding_model = models.CharField(max_length=200, blank=True, default="", editable=False)
    embedding_dim = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    embedded_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    def embedding_text(self) -> str:
        """The text whose embedding this row stores."""
        raise NotImplementedError

    def clear_embedding(self) -> None:
        """Forget the stored embedding (the text changed); the next embedding task refills it."""
        self.embedding = None
        self.embedding_model = ""
        self.embedding_dim = None
        self.embedded_at = None
