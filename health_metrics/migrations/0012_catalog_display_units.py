"""How each metric type is shown: precision, unit labels, imperial and other display units, from the catalog CSV."""

from django.db import migrations, models


def load(apps, schema_editor):
    from health_metrics.catalog import sync_catalog

    sync_catalog(apps.get_model("health_metrics", "MetricType"))


class Migration(migrations.Migration):
    dependencies = [
        ("health_metrics", "0011_readings_on_data_sources"),
    ]

    operations = [
        migrations.AddField(
            model_name="metrictype",
            name="display_units",
            field=models.JSONField(
                blank=True, default=list, help_text='Other units one may choose: [{"unit", "label", "precision"}].'
            ),
        ),
        migrations.AddField(
            model_name="metrictype",
            name="imperial_precision",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="metrictype",
            name="imperial_unit",
            field=models.CharField(
                blank=True, help_text="UCUM unit shown to imperial readers; blank: the canonical unit.", max_length=32
            ),
        ),
        migrations.AddField(
            model_name="metrictype",
            name="imperial_unit_label",
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name="metrictype",
            name="precision",
            field=models.PositiveSmallIntegerField(default=0, help_text="Decimals shown in the canonical unit."),
        ),
        migrations.AddField(
            model_name="metrictype",
            name="unit_label",
            field=models.CharField(blank=True, help_text="Human label of the canonical unit (bpm).", max_length=32),
        ),
        migrations.RunPython(load, migrations.RunPython.noop),
    ]
