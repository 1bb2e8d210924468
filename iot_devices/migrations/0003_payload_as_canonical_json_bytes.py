"""Batch payloads as canonical JSON bytes instead of JSONB: encoded once, and not parsed by PostgreSQL."""

import json

from django.db import migrations, models


def to_bytes(apps, schema_editor):
    IngestBatch = apps.get_model("iot_devices", "IngestBatch")
    for batch in IngestBatch.objects.only("pk", "payload").iterator(chunk_size=100):
        canonical = json.dumps(batch.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        IngestBatch.objects.filter(pk=batch.pk).update(payload_bytes=canonical.encode())


def to_json(apps, schema_editor):
    IngestBatch = apps.get_model("iot_devices", "IngestBatch")
    for batch in IngestBatch.objects.only("pk", "payload_bytes").iterator(chunk_size=100):
        IngestBatch.objects.filter(pk=batch.pk).update(payload=json.loads(bytes(batch.payload_bytes)))


class Migration(migrations.Migration):
    dependencies = [("iot_devices", "0002_device_alert")]

    operations = [
        migrations.AddField(
            model_name="ingestbatch",
            name="payload_bytes",
            field=models.BinaryField(default=b"", help_text="The readings as sent, as canonical JSON (UTF-8)."),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="ingestbatch",
            name="payload",
            field=models.JSONField(null=True, help_text="The readings as sent."),
        ),
        migrations.RunPython(to_bytes, to_json),
        migrations.RemoveField(model_name="ingestbatch", name="payload"),
        migrations.RenameField(model_name="ingestbatch", old_name="payload_bytes", new_name="payload"),
    ]
