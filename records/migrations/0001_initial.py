# Export jobs, moved here from health_metrics: the table (health_metrics_exportjob) and its rows stay as they
# are; only Django's model state moves. The content type follows, so admin permissions keep their meaning.

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


def _relabel(apps, old: str, new: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label=new, model="exportjob").exists():
        ContentType.objects.filter(app_label=old, model="exportjob").update(app_label=new)


def move_content_type(apps, schema_editor):
    _relabel(apps, "health_metrics", "records")


def move_content_type_back(apps, schema_editor):
    _relabel(apps, "records", "health_metrics")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('health_metrics', '0009_exportjob_moved_to_records'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
        migrations.CreateModel(
            name='ExportJob',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('format', models.CharField(choices=[('csv', 'CSV'), ('pdf', 'PDF report'), ('fhir', 'FHIR R4 Bundle (JSON)')], max_length=8)),
                ('start_date', models.DateField()),
                ('end_date', models.DateField()),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed')], default='pending', max_length=16)),
                ('file', models.FileField(blank=True, upload_to='exports/%Y/%m/')),
                ('size_bytes', models.PositiveBigIntegerField(blank=True, null=True)),
                ('row_count', models.PositiveIntegerField(blank=True, null=True)),
                ('error', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('started_at', models.DateTimeField(blank=True, help_text='When a worker last took the job.', null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('metric_type', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='health_metrics.metrictype')),
                ('requested_by', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'health_metrics_exportjob',
                'ordering': ['-created_at'],
            },
        ),
            ],
        ),
        migrations.RunPython(move_content_type, move_content_type_back, elidable=True),
    ]
