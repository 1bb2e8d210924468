"""The fields of one reading as clients send it, for the OpenAPI document (the rules live in validation.py).

The app's readings (`health-metrics/`, `bulk-create/`) and a device batch's readings share them; each adds its
own (the app a `source` and a `client_id`).
"""

from rest_framework import serializers


class ReadingInput(serializers.Serializer):
    metric_type = serializers.CharField(help_text="Code, alias or label: heart_rate, Heart Rate, bp …")
    value = serializers.FloatField(required=False, help_text="The value; for blood pressure, the systolic.")
    systolic = serializers.FloatField(required=False, help_text="Blood pressure (also systolic_value).")
    diastolic = serializers.FloatField(required=False, help_text="Blood pressure (also diastolic_value).")
    unit = serializers.CharField(required=False, help_text="Any accepted unit; default the canonical one.")
    recorded_at = serializers.DateTimeField(help_text="ISO 8601; without an offset, the user's time zone.")
    ended_at = serializers.DateTimeField(required=False, help_text="Interval types (sleep).")
    external_id = serializers.CharField(required=False, max_length=255, help_text="The sender's own record id.")
    notes = serializers.CharField(required=False, max_length=2000)
