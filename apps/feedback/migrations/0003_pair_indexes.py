"""A partial index per pair table: the user's preference pairs (edits that changed the text,
decided comparisons of two different texts) by id.

The adapter trigger asks after every edit and comparison whether the user has
``ATTUNE_FIT_TRIGGER_PAIRS`` new pairs since their last fit; it counted every pair of the user's
history to answer. With these it reads only the user's that many newest pairs. Built
concurrently, so a filled database keeps taking writes while it builds (hence not atomic).
"""

from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("feedback", "0002_seek_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="comparison",
            index=models.Index(
                condition=~models.Q(choice="tie") & ~models.Q(response_a=models.F("response_b")),
                fields=["user", "id"],
                name="fb_comparison_user_pair",
            ),
        ),
        AddIndexConcurrently(
            model_name="edit",
            index=models.Index(
                condition=~models.Q(distance=0) & ~models.Q(edited=models.F("original")),
                fields=["user", "id"],
                name="fb_edit_user_pair",
            ),
        ),
    ]
