from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.base import PatientQuerySerializer
from config.inputs import DateField, ModelSerializer

from ..catalog import get_catalog
from ..display import TypeDisplay, Units, round_value, units_for_request
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
            "precision",
            "unit_label",
            "imperial_unit",
            "imperial_unit_label",
            "imperial_precision",
            "display_units",
        )
        read_only_fields = fields


UNIT_HELP = "The canonical UCUM unit of value (and secondary_value)."
UNIT_LABEL_HELP = "Human label of the canonical unit: mmHg, °C, steps, bpm."
DISPLAY_UNIT_HELP = "UCUM unit of the display fields: the reader's choice (profile, or ?units=)."
DISPLAY_UNIT_LABEL_HELP = "Human label of display_unit."
ROUNDED_HELP = "Canonical unit, rounded to the catalog's precision for the type."


class ReadingSerializer(serializers.ModelSerializer):
    patient = serializers.UUIDField(source="user_id", read_only=True)
    metric_type = MetricTypeField(source="metric_type_id", read_only=True)  # from the in-memory catalog
    value = serializers.FloatField(read_only=True, help_text=ROUNDED_HELP + " Systolic for blood pressure.")
    secondary_value = serializers.FloatField(read_only=True, allow_null=True, help_text=ROUNDED_HELP)
    unit = serializers.CharField(read_only=True, help_text=UNIT_HELP)
    unit_label = serializers.CharField(read_only=True, help_text=UNIT_LABEL_HELP)
    systolic = serializers.FloatField(read_only=True, allow_null=True, help_text=ROUNDED_HELP)
    diastolic = serializers.FloatField(read_only=True, allow_null=True, help_text=ROUNDED_HELP)
    display_value = serializers.CharField(
        read_only=True, help_text='The value in display_unit, rounded, as text: "74.8", "165.0", "120/80".'
    )
    display_unit = serializers.CharField(read_only=True, help_text=DISPLAY_UNIT_HELP)
    display_unit_label = serializers.CharField(read_only=True, help_text=DISPLAY_UNIT_LABEL_HELP)
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
            "unit_label",
            "display_unit",
            "display_unit_label",
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
        """The declared fields, built directly: lists serialize up to 1,000 of these per request.

        Measured hot path: the reader's units resolve once per request and each type once per request.
        """
        metric_type = get_catalog().by_id[reading.metric_type_id]
        shown = units_for_request(self.context.get("request")).of(metric_type)
        canonical = shown.canonical
        if shown.shown is canonical and reading.secondary_value is None:  # the usual case: one rounding
            value, text = canonical.value_and_text(reading.value)
            secondary = None
        else:
            value, secondary = canonical.value(reading.value), canonical.value(reading.secondary_value)
            text = shown.shown.text(reading.value, reading.secondary_value)
        pair = secondary is not None
        return {
            "id": str(reading.id),
            "patient": str(reading.user_id),
            "metric_type": metric_type.code,
            "value": value,
            "secondary_value": secondary,
            "systolic": value if pair else None,
            "diastolic": secondary,
            "display_value": text,
            "unit": canonical.unit,
            "unit_label": canonical.label,
            "display_unit": shown.shown.unit,
            "display_unit_label": shown.shown.label,
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


class UnitFieldsSerializer(serializers.Serializer):
    """The units beside every shown value: canonical (`unit`, `unit_label`) and the reader's (`display_*`)."""

    unit = serializers.CharField(help_text=UNIT_HELP)
    unit_label = serializers.CharField(help_text=UNIT_LABEL_HELP)
    display_unit = serializers.CharField(help_text=DISPLAY_UNIT_HELP)
    display_unit_label = serializers.CharField(help_text=DISPLAY_UNIT_LABEL_HELP)


SUMMARY_FIGURES = (
    "min",
    "max",
    "mean",
    "median",
    "sum",
    "secondary_min",
    "secondary_max",
    "secondary_mean",
    "secondary_median",
)


class SummaryDisplaySerializer(serializers.Serializer):
    min = serializers.FloatField()
    max = serializers.FloatField()
    mean = serializers.FloatField()
    median = serializers.FloatField()
    sum = serializers.FloatField()
    secondary_min = serializers.FloatField(allow_null=True)
    secondary_max = serializers.FloatField(allow_null=True)
    secondary_mean = serializers.FloatField(allow_null=True)
    secondary_median = serializers.FloatField(allow_null=True)


class SummaryBucketSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    count = serializers.IntegerField()
    min = serializers.FloatField(help_text=ROUNDED_HELP)
    max = serializers.FloatField()
    mean = serializers.FloatField()
    median = serializers.FloatField()
    sum = serializers.FloatField()
    secondary_min = serializers.FloatField(allow_null=True)
    secondary_max = serializers.FloatField(allow_null=True)
    secondary_mean = serializers.FloatField(allow_null=True)
    secondary_median = serializers.FloatField(allow_null=True)
    display = SummaryDisplaySerializer(help_text="The same figures in display_unit, rounded.")


class SummarySerializer(UnitFieldsSerializer):
    metric_type = serializers.CharField()
    period = serializers.CharField()
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    timezone = serializers.CharField()
    buckets = SummaryBucketSerializer(many=True)


class TrendDisplaySerializer(serializers.Serializer):
    current_mean = serializers.FloatField(allow_null=True)
    previous_mean = serializers.FloatField(allow_null=True)
    slope_per_day = serializers.FloatField(allow_null=True)


class TrendSerializer(UnitFieldsSerializer):
    metric_type = serializers.CharField()
    days = serializers.IntegerField()
    current_mean = serializers.FloatField(allow_null=True, help_text=ROUNDED_HELP)
    current_count = serializers.IntegerField()
    previous_mean = serializers.FloatField(allow_null=True, help_text=ROUNDED_HELP)
    previous_count = serializers.IntegerField()
    change_percent = serializers.FloatField(allow_null=True, help_text="Rounded to one decimal.")
    slope_per_day = serializers.FloatField(
        allow_null=True, help_text="Canonical unit per day, with two decimals more than the type's values."
    )
    direction = serializers.ChoiceField(choices=["rising", "falling", "stable"], allow_null=True)
    dead_band_percent = serializers.FloatField()
    display = TrendDisplaySerializer(help_text="The means and the slope in display_unit, rounded.")


class LatestSerializer(serializers.Serializer):
    value = serializers.FloatField(help_text=ROUNDED_HELP)
    secondary_value = serializers.FloatField(allow_null=True, help_text=ROUNDED_HELP)
    display_value = serializers.CharField(help_text='In display_unit, rounded, as text: "74.8", "120/80".')
    recorded_at = serializers.DateTimeField()


class StatDisplaySerializer(serializers.Serializer):
    mean = serializers.FloatField()
    min = serializers.FloatField()
    max = serializers.FloatField()


class StatSerializer(UnitFieldsSerializer):
    metric_type = serializers.CharField()
    count = serializers.IntegerField()
    latest = LatestSerializer(allow_null=True)
    mean = serializers.FloatField(help_text=ROUNDED_HELP)
    min = serializers.FloatField()
    max = serializers.FloatField()
    share_in_normal_range = serializers.FloatField(help_text="0 to 1, three decimals.")
    direction = serializers.ChoiceField(choices=["rising", "falling", "stable"], allow_null=True)
    display = StatDisplaySerializer(help_text="mean, min and max in display_unit, rounded.")


def present_summary(body: dict[str, Any], shown: TypeDisplay) -> dict[str, Any]:
    """A summary answer with rounded figures and their display twins."""
    buckets = []
    for bucket in body["buckets"]:
        canonical, display = shown.figures(bucket, SUMMARY_FIGURES)
        buckets.append({**bucket, **canonical, "display": display})
    return {**body, **shown.unit_fields(), "buckets": buckets}


def present_trend(body: dict[str, Any], shown: TypeDisplay) -> dict[str, Any]:
    canonical, display = shown.figures(body, ("current_mean", "previous_mean"))
    slope = body["slope_per_day"]
    return {
        **body,
        **shown.unit_fields(),
        **canonical,
        "change_percent": round_value(body["change_percent"], 1),
        "slope_per_day": shown.canonical.rate(slope),
        "display": {**display, "slope_per_day": shown.shown.rate(slope)},
    }


def present_stats(rows: list[dict[str, Any]], units: Units) -> list[dict[str, Any]]:
    catalog = get_catalog()
    result = []
    for row in rows:
        shown = units.of(catalog.resolve(row["metric_type"]))
        canonical, display = shown.figures(row, ("mean", "min", "max"))
        latest = row["latest"]
        if latest is not None:
            latest = {
                "value": shown.canonical.value(latest["value"]),
                "secondary_value": shown.canonical.value(latest["secondary_value"]),
                "display_value": shown.shown.text(latest["value"], latest["secondary_value"]),
                "recorded_at": latest["recorded_at"],
            }
        result.append(
            {
                **row,
                **shown.unit_fields(),
                **canonical,
                "latest": latest,
                "share_in_normal_range": round_value(row["share_in_normal_range"], 3),
                "display": display,
            }
        )
    return result


class ProgressSerializer(serializers.Serializer):
    current = serializers.FloatField(allow_null=True, help_text=ROUNDED_HELP)
    percent = serializers.FloatField(allow_null=True, help_text="Rounded to one decimal.")
    achieved = serializers.BooleanField()
    as_of = serializers.JSONField(allow_null=True)


class TargetDisplaySerializer(serializers.Serializer):
    target_value = serializers.FloatField(allow_null=True)
    target_min = serializers.FloatField(allow_null=True)
    target_max = serializers.FloatField(allow_null=True)
    current = serializers.FloatField(allow_null=True, help_text="progress.current")


class TargetUnitField(serializers.CharField):
    """In: the unit of the values sent (default the canonical unit). Out: the canonical UCUM unit."""

    def get_attribute(self, instance: Target) -> str:
        return instance.metric_type.unit


TARGET_VALUES = ("target_value", "target_min", "target_max")


class TargetSerializer(ModelSerializer):
    metric_type = MetricTypeField()
    kind = serializers.ChoiceField(choices=TargetKind.choices, default=TargetKind.AT_LEAST)
    unit = TargetUnitField(
        required=False,
        help_text="In: the unit of the values sent (default the canonical unit). Out: the canonical UCUM unit.",
    )
    unit_label = serializers.SerializerMethodField(help_text=UNIT_LABEL_HELP)
    display_unit = serializers.SerializerMethodField(help_text=DISPLAY_UNIT_HELP)
    display_unit_label = serializers.SerializerMethodField(help_text=DISPLAY_UNIT_LABEL_HELP)
    start_date = DateField(required=False)
    progress = serializers.SerializerMethodField()
    display = serializers.SerializerMethodField(help_text="The target's values and progress in display_unit, rounded.")

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
            "unit_label",
            "display_unit",
            "display_unit_label",
            "start_date",
            "end_date",
            "is_active",
            "notes",
            "progress",
            "display",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "progress", "created_at", "updated_at")
        extra_kwargs = {name: {"help_text": ROUNDED_HELP + " Sent in unit."} for name in TARGET_VALUES}

    def _shown(self, target: Target) -> TypeDisplay:
        return units_for_request(self.context.get("request")).of(target.metric_type)

    def get_unit_label(self, target: Target) -> str:
        return self._shown(target).canonical.label

    def get_display_unit(self, target: Target) -> str:
        return self._shown(target).shown.unit

    def get_display_unit_label(self, target: Target) -> str:
        return self._shown(target).shown.label

    @extend_schema_field(ProgressSerializer(allow_null=True))
    def get_progress(self, target: Target) -> dict | None:
        progress = self.context.get("progress", {}).get(target.pk)
        if progress is None:
            return None
        return {
            **progress,
            "current": self._shown(target).canonical.value(progress["current"]),
            "percent": round_value(progress["percent"], 1),
        }

    @extend_schema_field(TargetDisplaySerializer)
    def get_display(self, target: Target) -> dict:
        shown = self._shown(target).shown
        progress = self.context.get("progress", {}).get(target.pk) or {}
        return {
            **{name: shown.value(getattr(target, name)) for name in TARGET_VALUES},
            "current": shown.value(progress.get("current")),
        }

    def to_representation(self, target: Target) -> dict:
        data = super().to_representation(target)
        canonical = self._shown(target).canonical
        for name in TARGET_VALUES:
            data[name] = canonical.value(getattr(target, name))
        return data
