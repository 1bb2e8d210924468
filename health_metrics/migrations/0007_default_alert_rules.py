"""Create the default alert rules from the catalog's thresholds (idempotent; a changed rule gets a new version)."""

from django.db import migrations


def load(apps, schema_editor):
    from health_metrics.alerts import sync_default_rules

    sync_default_rules(apps.get_model("health_metrics", "AlertRule"))


class Migration(migrations.Migration):
    dependencies = [("health_metrics", "0006_alerts_scores_exports")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
