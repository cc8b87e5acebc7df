"""Writes for a user's data as a whole: erase everything they own (hard delete)."""

from __future__ import annotations

from collections import Counter

from django.db import transaction

from apps.accounts.models import User
from apps.privacy.selectors import owned_models


@transaction.atomic
def erase_user_data(user: User) -> dict[str, int]:
    """Hard-delete every row the user owns, in every app; return how many rows of each model.

    Deletes cascade (an interaction takes its ratings and edits; embeddings are columns of the
    rows), and rows of later apps that depend on these go with them. The account itself and its
    API keys stay, so the user can go on using Attune.
    """
    deleted: Counter[str] = Counter()
    for model in owned_models():
        _, per_model = model.objects.filter(user=user).delete()
        deleted.update(per_model)
    return {label: count for label, count in sorted(deleted.items()) if count}
