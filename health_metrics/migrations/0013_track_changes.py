"""Readings and targets write their changes to the sync feed (accounts.sync.track): `changes/?since=`."""

from django.db import migrations

from accounts.sync import install

readings = install("health_metrics_reading", "readings", "user_id")
targets = install("health_metrics_target", "targets", "user_id")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_change_feed"),
        ("health_metrics", "0012_catalog_display_units"),
    ]

    operations = [
        migrations.RunPython(*readings, elidable=False),
        migrations.RunPython(*targets, elidable=False),
    ]
