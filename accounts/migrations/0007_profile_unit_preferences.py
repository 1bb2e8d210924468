"""Per-type display units on the profile ({"blood_glucose": "mmol/L"})."""

import accounts.preferences
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_access_log_refused_action"),
    ]

    operations = [
        migrations.AddField(
            model_name="profile",
            name="unit_preferences",
            field=models.JSONField(
                blank=True, default=dict, validators=[accounts.preferences.validate_unit_preferences]
            ),
        ),
    ]
