"""The shared cache's table (settings.CACHES without ATTUNE_CACHE_URL): throttle counters and
failed-key counts that every web process and machine must see, created by ``migrate`` rather
than a separate ``createcachetable`` step. Created even when Redis is the cache, so switching to
the database cache later needs nothing more."""

import io

from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations

TABLE = "attune_cache"  # CACHES["default"]["LOCATION"] in attune.settings


def create(apps, schema_editor) -> None:  # noqa: ANN001
    command = CreateCacheTable(stdout=io.StringIO())
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, TABLE, dry_run=False)


def drop(apps, schema_editor) -> None:  # noqa: ANN001
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
