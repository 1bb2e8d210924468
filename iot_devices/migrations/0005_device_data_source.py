"""Every device gets its data source; readings move from (source kind, device) onto data sources.

Forward: a source per device (kind device, the device's name, its owner), one per (user, kind) for the
readings that came from no device (the user's app sources), and every reading points at its source.
Backward: each reading's kind and device are restored from its source (health_metrics 0010 re-adds the
columns first). Runs in SQL: the readings table is the big one.
"""

import django.db.models.deletion
from django.db import migrations, models

PRIORITY = {"device": 40, "integration": 30, "import": 20, "manual": 10}
NAMES = {"manual": "Manual entry", "device": "Device", "integration": "Wearable connection", "import": "Import"}


def sources_forward(apps, schema_editor):
    DataSource = apps.get_model("health_metrics", "DataSource")
    Device = apps.get_model("iot_devices", "Device")
    Reading = apps.get_model("health_metrics", "Reading")
    db = schema_editor.connection.alias
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            # Checked row by row, so no trigger events are left pending for the ALTER TABLEs that follow.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for device in Device.objects.using(db).filter(data_source__isnull=True).iterator():
        source = DataSource.objects.using(db).create(
            user_id=device.owner_id, kind="device", name=device.name, priority=PRIORITY["device"]
        )
        Device.objects.using(db).filter(pk=device.pk).update(data_source=source)
    reading = Reading._meta.db_table
    device_table = Device._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {reading} SET data_source_id = (SELECT d.data_source_id FROM {device_table} d "
            f"WHERE d.id = {reading}.device_id) WHERE device_id IS NOT NULL AND data_source_id IS NULL"
        )
    pairs = (
        Reading.objects.using(db)
        .filter(data_source__isnull=True)
        .values_list("user_id", "source")
        .distinct()
        .order_by()
    )
    for user_id, kind in list(pairs):
        source, _ = DataSource.objects.using(db).get_or_create(
            user_id=user_id,
            kind=kind,
            is_app_default=True,
            defaults={"name": NAMES.get(kind, kind), "priority": PRIORITY.get(kind, 10)},
        )
        Reading.objects.using(db).filter(user_id=user_id, source=kind, data_source__isnull=True).update(
            data_source=source
        )


def sources_backward(apps, schema_editor):
    DataSource = apps.get_model("health_metrics", "DataSource")
    Device = apps.get_model("iot_devices", "Device")
    Reading = apps.get_model("health_metrics", "Reading")
    reading, source, device = Reading._meta.db_table, DataSource._meta.db_table, Device._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"UPDATE {reading} SET source = (SELECT s.kind FROM {source} s WHERE s.id = data_source_id)")
        cursor.execute(
            f"UPDATE {reading} SET device_id = (SELECT d.id FROM {device} d WHERE d.data_source_id = {reading}.data_source_id)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("health_metrics", "0010_data_source"),
        ("iot_devices", "0004_batch_failure_reason_and_alert"),
    ]

    operations = [
        migrations.AddField(
            model_name="device",
            name="data_source",
            field=models.OneToOneField(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="device",
                to="health_metrics.datasource",
            ),
        ),
        migrations.RunPython(sources_forward, sources_backward),
        migrations.AlterField(
            model_name="device",
            name="data_source",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE, related_name="device", to="health_metrics.datasource"
            ),
        ),
    ]
