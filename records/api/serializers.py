"""The patient overview as a clinician sees it: each section only where the grant's scopes cover it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import ProfileSerializer
from accounts.models import User
from health_metrics.display import units_for_request
from health_metrics.models import HealthAlert, Reading


class PatientAccessSerializer(serializers.Serializer):
    scopes = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField(allow_null=True)


class LatestVitalSerializer(serializers.ModelSerializer):
    metric_type = serializers.CharField(source="metric_type.code", read_only=True, help_text="The metric type's code.")
    value = serializers.FloatField(read_only=True, help_text="Canonical unit, rounded to the catalog's precision.")
    secondary_value = serializers.FloatField(read_only=True, allow_null=True, help_text="Diastolic, rounded.")
    display_value = serializers.CharField(
        read_only=True, help_text='In display_unit, rounded, as text: "74.8", "120/80" for blood pressure.'
    )
    unit = serializers.CharField(read_only=True, help_text="The canonical UCUM unit of value.")
    unit_label = serializers.CharField(read_only=True, help_text="Human label of unit: mmHg, °C, bpm.")
    display_unit = serializers.CharField(read_only=True, help_text="The reader's unit (profile, or ?units=).")
    display_unit_label = serializers.CharField(read_only=True, help_text="Human label of display_unit.")

    class Meta:
        model = Reading
        fields = (
            "metric_type",
            "value",
            "secondary_value",
            "display_value",
            "unit",
            "unit_label",
            "display_unit",
            "display_unit_label",
            "recorded_at",
            "is_abnormal",
        )
        read_only_fields = fields

    def to_representation(self, reading: Reading) -> dict:
        shown = units_for_request(self.context.get("request")).of(reading.metric_type)
        return {
            "metric_type": reading.metric_type.code,
            "value": shown.canonical.value(reading.value),
            "secondary_value": shown.canonical.value(reading.secondary_value),
            "display_value": shown.shown.text(reading.value, reading.secondary_value),
            **shown.unit_fields(),
            "recorded_at": self.fields["recorded_at"].to_representation(reading.recorded_at),
            "is_abnormal": reading.is_abnormal,
        }


class OpenAlertSerializer(serializers.ModelSerializer):
    metric_type = serializers.CharField(source="metric_type.code", read_only=True, help_text="The metric type's code.")

    class Meta:
        model = HealthAlert
        fields = ("id", "metric_type", "severity", "status", "message", "started_at")
        read_only_fields = fields


NO_METRICS_SCOPE = "Null when the viewer's care-team grant does not include the metrics scope."
NO_PROFILE_SCOPE = (
    "The medical profile (date of birth, sex, height, blood type, conditions, allergies, emergency contacts). "
    + NO_METRICS_SCOPE
)


class PatientSerializer(serializers.ModelSerializer):
    """A patient as their clinician sees them, with latest vitals and open alerts where the grant allows."""

    # PatientViewSet sets `profile_for_viewer`, `vitals_for_viewer` and `open_alerts_for_viewer` on each patient
    # for the whole page at once (None where the viewer's grant does not cover the section's scope), so a page
    # costs the queries of one.
    profile = serializers.SerializerMethodField(help_text=NO_PROFILE_SCOPE)
    access = serializers.SerializerMethodField()
    latest_vitals = serializers.SerializerMethodField(
        help_text="The newest reading of each main vital sign the patient has (types without one are left out). "
        + NO_METRICS_SCOPE
    )
    open_alerts = serializers.SerializerMethodField(
        help_text=f"Open and acknowledged alerts: open first, then critical first, then newest. {NO_METRICS_SCOPE}"
    )
    open_alert_count = serializers.SerializerMethodField(help_text=f"How many open_alerts. {NO_METRICS_SCOPE}")

    class Meta:
        model = User
        fields = (
            "id",
            "email",
            "first_name",
            "last_name",
            "profile",
            "access",
            "latest_vitals",
            "open_alerts",
            "open_alert_count",
        )
        read_only_fields = fields

    @extend_schema_field(ProfileSerializer(allow_null=True))
    def get_profile(self, patient: User) -> dict | None:
        profile = getattr(patient, "profile_for_viewer", None)
        return None if profile is None else ProfileSerializer(profile).data

    @extend_schema_field(LatestVitalSerializer(many=True, allow_null=True))
    def get_latest_vitals(self, patient: User) -> list | None:
        readings = getattr(patient, "vitals_for_viewer", None)
        return None if readings is None else LatestVitalSerializer(readings, many=True, context=self.context).data

    @extend_schema_field(OpenAlertSerializer(many=True, allow_null=True))
    def get_open_alerts(self, patient: User) -> list | None:
        alerts = getattr(patient, "open_alerts_for_viewer", None)
        return None if alerts is None else OpenAlertSerializer(alerts, many=True).data

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_open_alert_count(self, patient: User) -> int | None:
        alerts = getattr(patient, "open_alerts_for_viewer", None)
        return None if alerts is None else len(alerts)

    @extend_schema_field(PatientAccessSerializer(allow_null=True))
    def get_access(self, patient: User) -> dict | None:
        grants = getattr(patient, "grants_to_viewer", [])
        if not grants:
            return None  # staff see every patient without a grant
        return {"scopes": grants[0].scopes, "expires_at": grants[0].expires_at}
