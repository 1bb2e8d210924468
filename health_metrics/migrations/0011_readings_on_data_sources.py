"""Readings keep their origin only as a data source: the kind and device columns go, the keys move onto it.

Depends on iot_devices 0004, which points every reading at a data source. Daily totals become a flag,
unique per (data source, type, local day). Readings that the new keys call duplicates (the same source,
type and moment, or the same source and external id: possible before for manual entries) keep the one
changed last. Backward: the columns come back nullable-first and iot_devices 0004 refills them.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def flag_daily_totals(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            # Checked at once, so no trigger events are left pending for the ALTER TABLEs that follow.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("UPDATE health_metrics_reading SET is_daily_total = TRUE WHERE daily_total_key IS NOT NULL")
        # The new keys: of any group they would call duplicates, keep the row changed last.
        duplicates = """SELECT r.id FROM health_metrics_reading r JOIN health_metrics_reading o
            ON r.data_source_id = o.data_source_id AND (r.updated_at, r.id) < (o.updated_at, o.id)
           AND ((r.metric_type_id = o.metric_type_id AND r.recorded_at = o.recorded_at)
                OR (r.external_id <> '' AND r.external_id = o.external_id))"""
        cursor.execute(f"DELETE FROM health_metrics_healthalert_readings WHERE reading_id IN ({duplicates})")
        cursor.execute(f"DELETE FROM health_metrics_reading WHERE id IN ({duplicates})")


def restore_daily_total_keys(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "UPDATE health_metrics_reading SET daily_total_key = (SELECT s.kind FROM health_metrics_datasource s "
            "WHERE s.id = data_source_id) || ':' || CAST(local_date AS TEXT) WHERE is_daily_total"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("health_metrics", "0010_data_source"),
        ("iot_devices", "0005_device_data_source"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="reading", name="reading_one_daily_total_per_source"),
        migrations.RemoveConstraint(model_name="reading", name="reading_one_per_device_type_time"),
        migrations.AddField(
            model_name="reading",
            name="is_daily_total",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.RunPython(flag_daily_totals, restore_daily_total_keys),
        migrations.RemoveField(model_name="reading", name="daily_total_key"),
        migrations.RemoveField(model_name="reading", name="device"),
        migrations.RemoveField(model_name="reading", name="source"),
        migrations.AlterField(
            model_name="reading",
            name="data_source",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="readings",
                to="health_metrics.datasource",
            ),
        ),
        migrations.AddConstraint(
            model_name="reading",
            constraint=models.UniqueConstraint(
                fields=("data_source", "metric_type", "recorded_at"), name="reading_one_per_source_type_time"
            ),
        ),
        migrations.AddConstraint(
            model_name="reading",
            constraint=models.UniqueConstraint(
                condition=models.Q(("external_id", ""), _negated=True),
                fields=("data_source", "external_id"),
                name="reading_unique_external_id",
            ),
        ),
        migrations.AddConstraint(
            model_name="reading",
            constraint=models.UniqueConstraint(
                condition=models.Q(("is_daily_total", True)),
                fields=("data_source", "metric_type", "local_date"),
                name="reading_one_daily_total_per_source",
            ),
        ),
    ]
