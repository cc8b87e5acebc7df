"""CoPL versions that name a folder under ATTUNE_COPL_ROOT get the ref of that folder in the
artifact store (its files are put there; the folder stays)."""

from pathlib import Path

from django.conf import settings
from django.db import migrations


def forwards(apps, schema_editor):
    from core import config
    from core.artifacts import REF_PREFIX, adopt

    root = Path(settings.ATTUNE_COPL_ROOT)
    store = config.artifact_store()
    CollabModelVersion = apps.get_model("collab", "CollabModelVersion")
    for row in CollabModelVersion.objects.exclude(storage_path="").exclude(
        storage_path__startswith=REF_PREFIX
    ):
        row.storage_path = adopt(store, root, row.storage_path)
        row.save(update_fields=["storage_path"])


class Migration(migrations.Migration):
    dependencies = [("collab", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
