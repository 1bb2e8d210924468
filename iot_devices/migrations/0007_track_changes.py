"""Devices write their changes to the sync feed (accounts.sync.track): `iot-devices/changes/`."""

from django.db import migrations

from accounts.sync import install

devices = install("iot_devices_device", "devices", "owner_id")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_change_feed"),
        ("iot_devices", "0006_device_configuration_schema"),
    ]

    operations = [migrations.RunPython(*devices, elidable=False)]
