"""Load the 50 metric types from health_metrics/data/metric_catalog.csv (idempotent)."""

from django.db import migrations


def load(apps, schema_editor):
    from health_metrics.catalog import sync_catalog

    sync_catalog(apps.get_model("health_metrics", "MetricType"))


class Migration(migrations.Migration):
    dependencies = [("health_metrics", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
