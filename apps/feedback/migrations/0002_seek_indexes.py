"""The lists' order, ``(user, -created_at, -id)``, as an index of each feedback table.

It replaces ``(user, -created_at)``, its prefix: a cursor seeks on it, and a deep offset reads
ids from it instead of sorting every row of the user. Built concurrently, so a filled database
keeps taking writes while it builds (hence not atomic).
"""

from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

TABLES = [
    ("interaction", "fb_interaction"),
    ("rating", "fb_rating"),
    ("edit", "fb_edit"),
    ("comparison", "fb_comparison"),
]


def _operations() -> list:
    operations = []
    for model, prefix in TABLES:
        operations += [
            AddIndexConcurrently(
                model_name=model,
                index=models.Index(
                    fields=["user", "-created_at", "-id"], name=f"{prefix}_user_time_id"
                ),
            ),
            RemoveIndexConcurrently(model_name=model, name=f"{prefix}_user_time"),
        ]
    return operations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("feedback", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = _operations()
