# The console's user search (username, e-mail or external id containing the text, any case, as
# Django's icontains writes it: UPPER(col::text) LIKE UPPER('%text%')) reads trigram indexes
# instead of every user row.

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

COLUMNS = ["username", "email", "external_id"]
CREATE = "".join(
    f"CREATE INDEX console_user_{column}_trgm ON accounts_user "
    f"USING gin (UPPER({column}::text) gin_trgm_ops);\n"
    for column in COLUMNS
)
DROP = "".join(f"DROP INDEX console_user_{column}_trgm;\n" for column in COLUMNS)


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_counters"),
        ("accounts", "0002_shared_cache_table"),
    ]

    operations = [
        TrigramExtension(),
        migrations.RunSQL(CREATE, DROP),
    ]
