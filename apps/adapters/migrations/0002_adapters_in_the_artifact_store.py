"""Adapter versions and preference vectors that name a folder under ATTUNE_ADAPTER_ROOT get the
ref of that folder in the artifact store (its files are put there; the folder stays)."""

from pathlib import Path

from django.conf import settings
from django.db import migrations


def forwards(apps, schema_editor):
    from core import config
    from core.artifacts import REF_PREFIX, adopt

    root = Path(settings.ATTUNE_ADAPTER_ROOT)
    store = config.artifact_store()
    AdapterVersion = apps.get_model("adapters", "AdapterVersion")
    PreferenceVector = apps.get_model("adapters", "PreferenceVector")
    for row in AdapterVersion.objects.exclude(storage_path__startswith=REF_PREFIX):
        row.storage_path = adopt(store, root, row.storage_path)
        row.save(update_fields=["storage_path"])
    for row in PreferenceVector.objects.all():
        row.positive_path = adopt(store, root, row.positive_path)
        row.negative_path = adopt(store, root, row.negative_path)
        row.save(update_fields=["positive_path", "negative_path"])


class Migration(migrations.Migration):
    dependencies = [("adapters", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
