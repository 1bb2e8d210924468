"""Load the curated medication catalog and safety data from medications/data/*.csv (idempotent)."""

from django.db import migrations


def load(apps, schema_editor):
    from medications.catalog import load_catalog

    load_catalog(apps=apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("medications", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
