# Export jobs moved to the records app (exports will span domains). The table stays where it is;
# only Django's model state moves, so no row is touched.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("health_metrics", "0008_export_job_started_at"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ExportJob")],
            database_operations=[],
        ),
    ]
