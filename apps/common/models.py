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
