"""The medications API's shapes: the catalog, plans with their findings and revisions, doses, adherence and stats."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.inputs import DateField, DateTimeField, ModelSerializer

from ..models import (
    Dose,
    Medication,
    MedicationPlan,
    PlanRevision,
    PlanStatus,
    Route,
    Severity,
    Timing,
)
from ..schedule import ScheduleError, parse_times

MAX_QUANTITY = 100_000


class CatalogMedicationSerializer(serializers.ModelSerializer):
    drug_class = serializers.CharField(source="drug_class.name", default="", read_only=True)
    drug_class_code = serializers.CharField(source="drug_class_id", default=None, read_only=True, allow_null=True)
    ingredients = serializers.SerializerMethodField()

    class Meta:
        model = Medication
        fields = (
            "id",
            "name",
            "generic_name",
            "form",
            "strength",
            "rxcui",
            "drug_class",
            "drug_class_code",
            "ingredients",
            "source",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_ingredients(self, medication: Medication) -> list[str]:
        return [ingredient.name for ingredient in medication.ingredients.all()]


class FindingSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable key of the finding, e.g. `interaction:12`.")
    kind = serializers.ChoiceField(choices=["interaction", "allergy", "duplicate"])
    severity = serializers.ChoiceField(choices=Severity.choices)
    is_severe = serializers.BooleanField(help_text="Contraindicated or major: saving needs `acknowledge_findings`.")
    summary = serializers.CharField()
    advice = serializers.CharField()
    source = serializers.CharField()
    drugs = serializers.ListField(child=serializers.CharField())
    refs = serializers.ListField(
        child=serializers.CharField(allow_null=True),
        help_text="Per drug: the plan id (plans) or catalog id (interactions/); null for a typed name.",
    )


class TimesField(serializers.ListField):
    child = serializers.CharField(max_length=8)

    def to_internal_value(self, data: Any) -> list[str]:
        values = super().to_internal_value(data)
        try:
            return [moment.strftime("%H:%M") for moment in parse_times(values)]
        except ScheduleError as error:
            raise serializers.ValidationError(str(error), code="invalid_time") from None


class DaysOfWeekField(serializers.ListField):
    child = serializers.IntegerField(min_value=0, max_value=6)

    def to_internal_value(self, data: Any) -> list[int]:
        return sorted(set(super().to_internal_value(data)))


class QuantityField(serializers.DecimalField):
    """An amount of a medication: 0 to 100,000 with 3 decimals (`positive`: more than 0). Bounds are whole numbers,
    so the OpenAPI document holds no Decimal (JSON has none)."""

    def __init__(self, *, positive: bool = False, **kwargs: Any) -> None:
        self.positive = positive
        kwargs.setdefault("max_digits", 10)
        kwargs.setdefault("decimal_places", 3)
        kwargs.setdefault("max_value", MAX_QUANTITY)
        kwargs.setdefault("min_value", 0)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool):
            raise serializers.ValidationError("A number is required.", code="invalid")
        value = super().to_internal_value(data)
        if self.positive and value <= 0:
            raise serializers.ValidationError("Must be greater than 0.", code="min_value")
        return value


class PlanSerializer(ModelSerializer):
    """A plan as answered: the schedule, stock, status, and the safety findings against the patient's other plans."""

    medication = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    unit = serializers.CharField(source="dose_unit", read_only=True, help_text="The same as dose_unit.")
    needs_refill = serializers.SerializerMethodField()
    findings = serializers.SerializerMethodField()

    class Meta:
        model = MedicationPlan
        fields = (
            "id",
            "patient",
            "medication",
            "name",
            "dose",
            "dose_unit",
            "unit",
            "route",
            "times",
            "days_of_week",
            "interval_hours",
            "rrule",
            "timing",
            "as_needed",
            "max_doses_per_day",
            "start_date",
            "end_date",
            "instructions",
            "prescriber",
            "prescriber_name",
            "stock",
            "refill_threshold",
            "needs_refill",
            "status",
            "status_changed_at",
            "revision",
            "created_by",
            "created_at",
            "updated_at",
            "findings",
        )
        read_only_fields = fields

    def get_needs_refill(self, plan: MedicationPlan) -> bool:
        return plan.stock is not None and plan.refill_threshold is not None and plan.stock <= plan.refill_threshold

    @extend_schema_field(FindingSerializer(many=True))
    def get_findings(self, plan: MedicationPlan) -> list[dict]:
        return self.context.get("findings", {}).get(str(plan.pk), [])


@extend_schema_field(
    {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1, "maxLength": 300}]}
)
class MedicationRefField(serializers.Field):
    """A catalog medication's id (a number, also as a string of digits), or a medication's name."""

    default_error_messages = {"invalid": "A catalog medication id (a number) or a medication's name."}

    def to_internal_value(self, data: Any) -> int | str:
        if isinstance(data, int) and not isinstance(data, bool) and data >= 1:
            return data
        if isinstance(data, str) and 0 < len(data.strip()) <= 300 and "\x00" not in data:
            text = data.strip()
            return int(text) if text.isdigit() and int(text) >= 1 else text
        self.fail("invalid")
        return None  # unreachable: fail() raises

    def to_representation(self, value: Any) -> Any:
        return value


# Other names clients send for a plan's fields (API.md says "dose, unit, schedule"): accepted, the canonical wins.
SCHEDULE_KEYS = ("times", "days_of_week", "interval_hours", "rrule", "timing")


class PlanWriteSerializer(serializers.Serializer):
    """What a client sends to make or change a plan (PATCH: any subset). `unit` is taken for `dose_unit`, and a
    `schedule` object's `times`, `days_of_week`, `interval_hours`, `rrule` and `timing` (or a `schedule` string, an
    RRULE) for the top-level fields."""

    patient = serializers.UUIDField(required=False, help_text="Clinicians: a consented patient's id (create only).")
    medication = MedicationRefField(
        required=False,
        allow_null=True,
        help_text="A catalog medication id (medications/catalog/), or a name: a catalog product's exact name "
        "selects it, any other is the plan's free-text name.",
    )
    name = serializers.CharField(required=False, max_length=300, help_text="Free text; the catalog name by default.")
    dose = QuantityField(required=False, positive=True)
    dose_unit = serializers.CharField(required=False, max_length=32, help_text='The unit of dose and stock: "tablet".')
    route = serializers.ChoiceField(required=False, choices=Route.choices)
    times = TimesField(required=False, max_length=24, help_text='Local times of day: ["08:00", "20:00"].')
    days_of_week = DaysOfWeekField(required=False, max_length=7, help_text="0 = Monday … 6 = Sunday; empty: daily.")
    interval_hours = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=672)
    rrule = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text='RFC 5545, e.g. "FREQ=WEEKLY;BYDAY=MO,TH".'
    )
    timing = serializers.ChoiceField(
        required=False,
        choices=Timing.choices,
        help_text="`clock`: the same local time, also after travel; `elapsed`: the same spacing in absolute time.",
    )
    as_needed = serializers.BooleanField(required=False)
    max_doses_per_day = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=48)
    start_date = DateField(required=False, help_text="First local day; today by default.")
    end_date = DateField(required=False, allow_null=True)
    instructions = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    prescriber_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    stock = QuantityField(required=False, allow_null=True)
    refill_threshold = QuantityField(required=False, allow_null=True)
    status = serializers.ChoiceField(required=False, choices=PlanStatus.choices)
    acknowledge_findings = serializers.BooleanField(
        required=False, default=False, help_text="Required true to save a plan with a severe (major or worse) finding."
    )

    def to_internal_value(self, data: Any) -> dict:
        if isinstance(data, dict):
            data = dict(data)
            if "unit" in data and "dose_unit" not in data:
                data["dose_unit"] = data["unit"]
            schedule = data.get("schedule")
            if isinstance(schedule, dict):
                for key in SCHEDULE_KEYS:
                    if key in schedule and key not in data:
                        data[key] = schedule[key]
            elif isinstance(schedule, str) and "rrule" not in data:
                data["rrule"] = schedule
        return super().to_internal_value(data)


class RevisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = PlanRevision
        fields = ("number", "actor", "at", "changes", "acknowledged_findings")
        read_only_fields = fields


class RefillSerializer(serializers.Serializer):
    quantity = QuantityField(positive=True, help_text="Added to stock, in the dose's unit.")


class DoseSerializer(serializers.ModelSerializer):
    plan_name = serializers.CharField(source="plan.name", read_only=True)
    as_needed = serializers.SerializerMethodField()

    class Meta:
        model = Dose
        fields = (
            "id",
            "plan",
            "plan_name",
            "patient",
            "scheduled_at",
            "local_date",
            "as_needed",
            "status",
            "quantity",
            "taken_at",
            "late",
            "skip_reason",
            "note",
            "logged_at",
            "logged_by",
        )
        read_only_fields = fields

    def get_as_needed(self, dose: Dose) -> bool:
        return dose.scheduled_at is None


class TakeSerializer(serializers.Serializer):
    taken_at = DateTimeField(required=False, help_text="When it was taken; now by default.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class SkipSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, help_text="Why the dose was skipped.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class LogDoseSerializer(TakeSerializer):
    quantity = QuantityField(required=False, positive=True, help_text="The plan's dose by default.")


class InteractionQuerySerializer(serializers.Serializer):
    medications = serializers.ListField(
        child=MedicationRefField(), required=False, max_length=50, help_text="Catalog ids, or names."
    )
    names = serializers.ListField(
        child=serializers.CharField(max_length=300), required=False, max_length=50, help_text="Names typed freely."
    )

    def validate(self, attrs: dict) -> dict:
        if len(attrs.get("medications", [])) + len(attrs.get("names", [])) < 2:
            raise serializers.ValidationError(
                {"medications": ["Name at least two medications (catalog ids in `medications`, or `names`)."]}
            )
        return attrs


class InteractionAnswerSerializer(serializers.Serializer):
    drugs = serializers.ListField(child=serializers.DictField(), help_text="What each input was resolved to.")
    interactions = FindingSerializer(many=True)


class RangeQuerySerializer(serializers.Serializer):
    start_date = DateField(required=False, help_text="First local day, included; 29 days before end_date by default.")
    end_date = DateField(required=False, help_text="Last local day, included; today by default.")
    patient = serializers.UUIDField(required=False, help_text="Clinicians: a consented patient's id.")
    plan = serializers.UUIDField(required=False, help_text="Only this plan.")


class AdherenceSerializer(serializers.Serializer):
    taken = serializers.IntegerField()
    late = serializers.IntegerField()
    missed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    pending = serializers.IntegerField()
    as_needed = serializers.IntegerField()
    days_covered = serializers.IntegerField()
    days_in_period = serializers.IntegerField()
    pdc = serializers.FloatField(allow_null=True, help_text="Proportion of days covered, 0-1.")
    adherent = serializers.BooleanField(allow_null=True, help_text="pdc ≥ 0.8 (PQA).")
    first_dose_date = serializers.DateField(allow_null=True)


class PlanAdherenceSerializer(AdherenceSerializer):
    plan = serializers.UUIDField()
    patient = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=PlanStatus.choices)
    as_needed_plan = serializers.BooleanField(help_text="An as-needed (PRN) plan: no PDC.")


class AdherenceReportSerializer(serializers.Serializer):
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    overall = AdherenceSerializer()
    plans = PlanAdherenceSerializer(many=True)


class RefillNeedSerializer(serializers.Serializer):
    plan = serializers.UUIDField()
    name = serializers.CharField()
    stock = serializers.DecimalField(max_digits=10, decimal_places=3)
    refill_threshold = serializers.DecimalField(max_digits=10, decimal_places=3)


class TodaysDosesSerializer(serializers.Serializer):
    scheduled = serializers.IntegerField()
    taken = serializers.IntegerField()
    pending = serializers.IntegerField()


class MedicationStatsSerializer(serializers.Serializer):
    active = serializers.IntegerField()
    needing_refill = RefillNeedSerializer(many=True)
    today = TodaysDosesSerializer()
    adherence_this_week = AdherenceSerializer()
