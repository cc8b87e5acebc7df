"""Users, personal API tokens, and client apps whose end users live in the app's own namespace."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person with a login, or an end user of a client app (``client_app`` set, no password).

    End users are named by their app per request (``external_id``) and created on first sight.
    """

    client_app = models.ForeignKey(
        "accounts.ClientApp",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="end_users",
    )
    external_id = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client_app", "external_id"],
                condition=models.Q(client_app__isnull=False),
                name="unique_end_user_per_app",
            )
        ]

    @property
    def is_end_user(self) -> bool:
        return self.client_app_id is not None


class ApiKey(models.Model):
    """What personal tokens and app keys share: only a SHA-256 digest of the key is stored."""

    name = models.CharField(max_length=100)
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(
        max_length=16, editable=False, help_text="Shown to tell keys apart."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"


class PersonalToken(ApiKey):
    """A user's own API token: ``Authorization: Bearer atk_…`` acts as that user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="personal_tokens"
    )


class ClientApp(ApiKey):
    """A client application: ``Authorization: Bearer apk_…`` acts for the end user it names."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="client_apps"
    )
