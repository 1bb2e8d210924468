"""A batch's failure reason; a device alert per failed batch (batch_failed), outside the one-open-episode rule."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("iot_devices", "0003_payload_as_canonical_json_bytes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="devicealert",
            name="device_alert_one_open_episode",
        ),
        migrations.AddField(
            model_name="devicealert",
            name="batch",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="iot_devices.ingestbatch",
            ),
        ),
        migrations.AddField(
            model_name="ingestbatch",
            name="failure_reason",
            field=models.TextField(
                blank=True,
                help_text="Why the last attempt crashed, until another starts; final once the batch is failed.",
            ),
        ),
        migrations.AlterField(
            model_name="devicealert",
            name="kind",
            field=models.CharField(
                choices=[
                    ("offline", "Offline"),
                    ("low_battery", "Low battery"),
                    ("rejected_readings", "Readings rejected"),
                    ("batch_failed", "Batch failed"),
                ],
                max_length=24,
            ),
        ),
        migrations.AddConstraint(
            model_name="devicealert",
            constraint=models.UniqueConstraint(
                condition=models.Q(("batch__isnull", True), ("resolved_at__isnull", True)),
                fields=("device", "kind"),
                name="device_alert_one_open_episode",
            ),
        ),
        migrations.AddConstraint(
            model_name="devicealert",
            constraint=models.UniqueConstraint(fields=("batch",), name="device_alert_one_per_batch"),
        ),
    ]
