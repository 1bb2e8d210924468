from __future__ import annotations

from datetime import UTC, timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.base import PatientQuerySerializer
from config.inputs import DateField, ModelSerializer

from ..catalog import get_catalog
from ..fields import MetricTypeField
from ..models import DataSource, MetricType, Reading, SourceKind, Target, TargetKind
from ..reading_input import ReadingInput


class MetricTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = MetricType
        fields = (
            "id",
            "code",
            "display_name",
            "aliases",
            "loinc",
            "unit",
            "accepted_units",
            "plausible_min",
            "plausible_max",
            "warn_low",
            "warn_high",
            "critical_low",
            "critical_high",
            "aggregation",
            "value_kind",
            "is_interval",
            "primary_loinc",
            "secondary_loinc",
            "secondary_min",
            "secondary_max",
            "secondary_warn_high",
            "secondary_critical_high",
        )
        read_only_fields = fields


class ReadingSerializer(serializers.ModelSerializer):
    patient = serializers.UUIDField(source="user_id", read_only=True)
    metric_type = MetricTypeField(source="metric_type_id", read_only=True)  # from the in-memory catalog
    unit = serializers.SerializerMethodField()
    systolic = serializers.SerializerMethodField()
    diastolic = serializers.SerializerMethodField()
    display_value = serializers.CharField(read_only=True)
    source = serializers.ChoiceField(
        choices=SourceKind.choices, source="data_source.kind", read_only=True, help_text="The data source's kind."
    )

    class Meta:
        model = Reading
        fields = (
            "id",
            "patient",
            "metric_type",
            "value",
            "secondary_value",
            "systolic",
            "diastolic",
            "display_value",
            "unit",
            "original_value",
            "original_secondary_value",
            "original_unit",
            "recorded_at",
            "utc_offset_minutes",
            "ended_at",
            "local_date",
            "source",
            "data_source",
            "client_id",
            "external_id",
            "notes",
            "is_abnormal",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def to_representation(self, reading: Reading) -> dict:
        """The declared fields, built directly: lists serialize up to 1,000 of these per request."""
        metric_type = get_catalog().by_id[reading.metric_type_id]
        pair = reading.secondary_value is not None
        return {
            "id": str(reading.id),
            "patient": str(reading.user_id),
            "metric_type": metric_type.code,
            "value": reading.value,
            "secondary_value": reading.secondary_value,
            "systolic": reading.value if pair else None,
            "diastolic": reading.secondary_value,
            "display_value": reading.display_value,
            "unit": metric_type.unit,
            "original_value": reading.original_value,
            "original_secondary_value": reading.original_secondary_value,
            "original_unit": reading.original_unit,
            "recorded_at": _iso(reading.recorded_at),
            "utc_offset_minutes": reading.utc_offset_minutes,
            "ended_at": _iso(reading.ended_at),
            "local_date": reading.local_date.isoformat(),
            # Lists annotate the kind (one query for the page); a single reading has its source loaded.
            "source": reading.source_kind if hasattr(reading, "source_kind") else reading.data_source.kind,
            "data_source": str(reading.data_source_id),
            "client_id": str(reading.client_id) if reading.client_id else None,
            "external_id": reading.external_id,
            "notes": reading.notes,
            "is_abnormal": reading.is_abnormal,
            "created_at": _iso(reading.created_at),
            "updated_at": _iso(reading.updated_at),
        }

    def get_unit(self, reading: Reading) -> str:
        return get_catalog().by_id[reading.metric_type_id].unit

    def get_systolic(self, reading: Reading) -> float | None:
        return reading.value if reading.secondary_value is not None else None

    def get_diastolic(self, reading: Reading) -> float | None:
        return reading.secondary_value


def _iso(moment):  # noqa: ANN001, ANN202 - DRF's own format for UTC datetimes
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class DataSourceSerializer(serializers.ModelSerializer):
    patient = serializers.UUIDField(source="user_id", read_only=True)
    priority = serializers.IntegerField(
        min_value=0, max_value=1000, help_text="Higher wins when sources report a total for the same type and day."
    )

    class Meta:
        model = DataSource
        fields = ("id", "patient", "kind", "name", "priority", "is_app_default", "created_at", "updated_at")
        read_only_fields = ("id", "patient", "kind", "is_app_default", "created_at", "updated_at")


class ReadingInputSerializer(ReadingInput):
    """What a client sends for one reading (documentation; the rules live in health_metrics.validation)."""

    source = serializers.ChoiceField(
        choices=SourceKind.choices,
        required=False,
        help_text="Where the reading comes from (default manual): it goes to the user's own source of that kind.",
    )
    client_id = serializers.UUIDField(required=False, help_text="Client-made id: a retry stores nothing twice.")


class ReadingUpdateSerializer(serializers.Serializer):
    value = serializers.FloatField(required=False)
    systolic = serializers.FloatField(required=False)
    diastolic = serializers.FloatField(required=False)
    unit = serializers.CharField(required=False)
    recorded_at = serializers.DateTimeField(required=False)
    ended_at = serializers.DateTimeField(required=False)
    notes = serializers.CharField(required=False, max_length=2000)


class BulkCreateSerializer(serializers.Serializer):
    readings = serializers.ListField(child=ReadingInputSerializer(), max_length=1000)


class ItemErrorSerializer(serializers.Serializer):
    attr = serializers.CharField()
    code = serializers.CharField()
    detail = serializers.CharField()


class ItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "replaced", "duplicate", "superseded", "error"])
    id = serializers.UUIDField(allow_null=True)
    error = ItemErrorSerializer(allow_null=True)


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    replaced = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    superseded = serializers.IntegerField()
    errors = serializers.IntegerField()
    results = ItemResultSerializer(many=True)


def _default_start(period: str, end):  # noqa: ANN001, ANN202
    return end - {"day": timedelta(days=29), "week": timedelta(weeks=12), "month": timedelta(days=365)}[period]


class SummaryQuerySerializer(PatientQuerySerializer):
    metric_type = MetricTypeField()
    period = serializers.ChoiceField(choices=["day", "week", "month"], default="day")
    start_date = DateField(required=False, help_text="First local day (inclusive).")
    end_date = DateField(required=False, help_text="Last local day (inclusive); default today.")

    def validate(self, attrs: dict) -> dict:
        attrs.setdefault("end_date", timezone.localdate(timezone=self.context["tz"]))
        attrs.setdefault("start_date", _default_start(attrs["period"], attrs["end_date"]))
        if attrs["start_date"] > attrs["end_date"]:
            raise serializers.ValidationError({"start_date": "Must not be after end_date."})
        if (attrs["end_date"] - attrs["start_date"]).days > 3660:
            raise serializers.ValidationError({"start_date": "At most ten years at a time."})
        return attrs


class TrendsQuerySerializer(PatientQuerySerializer):
    metric_type = MetricTypeField()
    days = serializers.IntegerField(min_value=1, max_value=365, default=7)


class StatsQuerySerializer(PatientQuerySerializer):
    days = serializers.IntegerField(min_value=1, max_value=365, default=30)


class SummaryBucketSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    count = serializers.IntegerField()
    min = serializers.FloatField()
    max = serializers.FloatField()
    mean = serializers.FloatField()
    median = serializers.FloatField()
    sum = serializers.FloatField()
    secondary_min = serializers.FloatField(allow_null=True)
    secondary_max = serializers.FloatField(allow_null=True)
    secondary_mean = serializers.FloatField(allow_null=True)
    secondary_median = serializers.FloatField(allow_null=True)


class SummarySerializer(serializers.Serializer):
    metric_type = serializers.CharField()
    unit = serializers.CharField()
    period = serializers.CharField()
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    timezone = serializers.CharField()
    buckets = SummaryBucketSerializer(many=True)


class TrendSerializer(serializers.Serializer):
    metric_type = serializers.CharField()
    unit = serializers.CharField()
    days = serializers.IntegerField()
    current_mean = serializers.FloatField(allow_null=True)
    current_count = serializers.IntegerField()
    previous_mean = serializers.FloatField(allow_null=True)
    previous_count = serializers.IntegerField()
    change_percent = serializers.FloatField(allow_null=True)
    slope_per_day = serializers.FloatField(allow_null=True)
    direction = serializers.ChoiceField(choices=["rising", "falling", "stable"], allow_null=True)
    dead_band_percent = serializers.FloatField()


class LatestSerializer(serializers.Serializer):
    value = serializers.FloatField()
    display_value = serializers.CharField()
    recorded_at = serializers.DateTimeField()


class StatSerializer(serializers.Serializer):
    metric_type = serializers.CharField()
    unit = serializers.CharField()
    count = serializers.IntegerField()
    latest = LatestSerializer(allow_null=True)
    mean = serializers.FloatField()
    min = serializers.FloatField()
    max = serializers.FloatField()
    share_in_normal_range = serializers.FloatField()
    direction = serializers.ChoiceField(choices=["rising", "falling", "stable"], allow_null=True)


class ProgressSerializer(serializers.Serializer):
    current = serializers.FloatField(allow_null=True)
    percent = serializers.FloatField(allow_null=True)
    achieved = serializers.BooleanField()
    as_of = serializers.JSONField(allow_null=True)


class TargetSerializer(ModelSerializer):
    metric_type = MetricTypeField()
    kind = serializers.ChoiceField(choices=TargetKind.choices, default=TargetKind.AT_LEAST)
    unit = serializers.CharField(write_only=True, required=False, help_text="Unit of the values sent.")
    start_date = DateField(required=False)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Target
        fields = (
            "id",
            "metric_type",
            "kind",
            "target_value",
            "target_min",
            "target_max",
            "unit",
            "start_date",
            "end_date",
            "is_active",
            "notes",
            "progress",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "progress", "created_at", "updated_at")

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, target: Target) -> dict | None:
        return self.context.get("progress", {}).get(target.pk)
