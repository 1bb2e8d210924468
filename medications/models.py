"""The medication catalog and its safety data, a patient's medication plans with their revisions, and doses.

Catalog: drug classes, ingredients and products (medications/data/*.csv, loaded by migration 0002; an operator loads
a full RxNorm release with `import_rxnorm`). Interaction rules join two sides, each an ingredient or a class, so
"warfarin with any NSAID" is one row; every rule names its source.

A plan is what the patient takes and when. Its doses are materialised 48 h ahead by a beat job (medications/doses.py),
one row per (plan, scheduled time) under a unique constraint, so a job run twice, or a DST day, adds nothing twice.
As-needed (PRN) doses are rows without a scheduled time.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Scope, TimeStampedModel, User, validate_timezone
from accounts.querysets import PatientOwnedQuerySet

# --- Catalog -------------------------------------------------------------------------------------------------------


class DrugClass(models.Model):
    """A therapeutic or chemical class (NSAIDs, penicillins, SSRIs): what interaction, allergy and duplicate-therapy
    rules can name instead of every ingredient in it."""

    code = models.SlugField(max_length=64, primary_key=True)
    name = models.CharField(max_length=120)
    # Other names an allergy may be written as ("penicillin", "sulfa"), lower case.
    synonyms = models.JSONField(default=list, blank=True)
    atc_code = models.CharField(max_length=16, blank=True)
    # Two active plans in this class are a duplicate therapy (true for narrow classes: statins, SSRIs, PPIs).
    duplicate_therapy = models.BooleanField(default=False)
    source = models.CharField(max_length=300)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "drug classes"

    def __str__(self) -> str:
        return self.name


class Ingredient(models.Model):
    """An active ingredient (RxNorm term type IN), in one or more classes."""

    name = models.CharField(max_length=200, unique=True)  # lower case generic name: "warfarin"
    rxcui = models.CharField(max_length=16, unique=True, null=True, blank=True)  # noqa: DJ001 (null: unknown, unique)
    classes = models.ManyToManyField(DrugClass, blank=True, related_name="ingredients")
    # Brand and other names a patient may type ("coumadin"), lower case.
    synonyms = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=300)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Medication(models.Model):
    """A catalog product: a clinical drug (RxNorm SCD) or a branded one (SBD), with its ingredients."""

    name = models.CharField(max_length=300)
    generic_name = models.CharField(max_length=300)
    form = models.CharField(max_length=80, blank=True)  # "tablet", "capsule", "oral solution"
    strength = models.CharField(max_length=120, blank=True)  # "5 mg", "500 mg / 125 mg"
    rxcui = models.CharField(max_length=16, unique=True, null=True, blank=True)  # noqa: DJ001 (null: unknown, unique)
    ingredients = models.ManyToManyField(Ingredient, related_name="medications")
    drug_class = models.ForeignKey(DrugClass, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    source = models.CharField(max_length=300)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            # The catalog search: products by name prefix.
            models.Index(fields=["name"], name="medication_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class Severity(models.TextChoices):
    CONTRAINDICATED = "contraindicated", "Contraindicated"
    MAJOR = "major", "Major"
    MODERATE = "moderate", "Moderate"
    MINOR = "minor", "Minor"


# Findings of these severities need an explicit acknowledgement before a plan is saved.
SEVERE = (Severity.CONTRAINDICATED, Severity.MAJOR)


class InteractionRule(models.Model):
    """A known interaction between two sides, each one ingredient or one class, with severity, advice and source."""

    ingredient_a = models.ForeignKey(Ingredient, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    class_a = models.ForeignKey(DrugClass, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    ingredient_b = models.ForeignKey(Ingredient, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    class_b = models.ForeignKey(DrugClass, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    severity = models.CharField(max_length=16, choices=Severity.choices)
    summary = models.CharField(max_length=300)  # what happens: "increased risk of bleeding"
    advice = models.TextField()
    source = models.CharField(max_length=300)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ingredient_a__isnull=False, class_a__isnull=True)
                | Q(ingredient_a__isnull=True, class_a__isnull=False),
                name="interactionrule_one_side_a",
            ),
            models.CheckConstraint(
                condition=Q(ingredient_b__isnull=False, class_b__isnull=True)
                | Q(ingredient_b__isnull=True, class_b__isnull=False),
                name="interactionrule_one_side_b",
            ),
        ]

    def __str__(self) -> str:
        a = self.ingredient_a or self.class_a
        b = self.ingredient_b or self.class_b
        return f"{a} + {b} ({self.severity})"


# --- Plans ---------------------------------------------------------------------------------------------------------


class Route(models.TextChoices):
    ORAL = "oral", "Oral"
    SUBLINGUAL = "sublingual", "Sublingual"
    INHALED = "inhaled", "Inhaled"
    NASAL = "nasal", "Nasal"
    TOPICAL = "topical", "Topical"
    TRANSDERMAL = "transdermal", "Transdermal"
    OPHTHALMIC = "ophthalmic", "Ophthalmic"
    OTIC = "otic", "Otic"
    SUBCUTANEOUS = "subcutaneous", "Subcutaneous"
    INTRAMUSCULAR = "intramuscular", "Intramuscular"
    INTRAVENOUS = "intravenous", "Intravenous"
    RECTAL = "rectal", "Rectal"
    VAGINAL = "vaginal", "Vaginal"
    OTHER = "other", "Other"


class Timing(models.TextChoices):
    # 08:00 local wherever the patient is: doses follow the wall clock of the profile's current timezone.
    CLOCK = "clock", "Same clock time"
    # Every 12 h means 12 h: doses keep their spacing in absolute time, across DST changes and travel.
    ELAPSED = "elapsed", "Same elapsed time"


class PlanStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    DISCONTINUED = "discontinued", "Discontinued"


class MedicationPlanQuerySet(PatientOwnedQuerySet):
    patient_field = "patient"
    access_scope = Scope.MEDICATIONS

    def active(self) -> MedicationPlanQuerySet:
        return self.filter(status=PlanStatus.ACTIVE)


class MedicationPlan(TimeStampedModel):
    """What a patient takes, how much, and when: a schedule of times of day (optionally on some weekdays), every N
    hours, or an RRULE, or only as needed (PRN) with a daily maximum. Stock is counted in the dose's unit."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(User, on_delete=models.CASCADE, related_name="medication_plans")
    medication = models.ForeignKey(
        Medication, on_delete=models.PROTECT, null=True, blank=True, related_name="plans"
    )  # None: a free-text name
    name = models.CharField(max_length=300)
    dose = models.DecimalField(
        max_digits=10, decimal_places=3, validators=[MinValueValidator(Decimal("0.001"))], default=Decimal(1)
    )
    dose_unit = models.CharField(max_length=32, default="tablet")
    route = models.CharField(max_length=16, choices=Route.choices, default=Route.ORAL)
    # The schedule: local times of day ("08:00"), on some weekdays (0 = Monday; empty: every day); or every
    # `interval_hours` from the first time; or an RFC 5545 RRULE (its BYHOUR/BYMINUTE, else the first time).
    times = models.JSONField(default=list, blank=True)
    days_of_week = models.JSONField(default=list, blank=True)
    interval_hours = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(24 * 28)]
    )
    rrule = models.CharField(max_length=500, blank=True)
    timing = models.CharField(max_length=8, choices=Timing.choices, default=Timing.CLOCK)
    # The zone the plan was made in: elapsed-time schedules are laid out in its UTC offset at the start.
    anchor_timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    as_needed = models.BooleanField(default=False)
    max_doses_per_day = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(48)]
    )
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    instructions = models.TextField(blank=True)
    prescriber = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    prescriber_name = models.CharField(max_length=200, blank=True)
    stock = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    refill_threshold = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    # Doses are materialised from this moment on: the plan's creation, then each change of its schedule or of the
    # patient's timezone (so a changed schedule never back-fills doses before the change).
    doses_from = models.DateTimeField(default=timezone.now, editable=False)
    # Set when the refill reminder for the current stock level was sent; a refill clears it (the claim).
    refill_reminded_at = models.DateTimeField(null=True, blank=True, editable=False)
    status = models.CharField(max_length=16, choices=PlanStatus.choices, default=PlanStatus.ACTIVE)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    revision = models.PositiveIntegerField(default=1, editable=False)

    objects = MedicationPlanQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="medicationplan_end_after_start",
            ),
            models.CheckConstraint(condition=Q(stock__isnull=True) | Q(stock__gte=0), name="medicationplan_stock"),
        ]
        indexes = [
            # A patient's plans (the list) and the dose job's active plans.
            models.Index(fields=["patient", "status"], name="medicationplan_patient_idx"),
            models.Index(fields=["status"], name="medicationplan_status_idx", condition=Q(status="active")),
        ]

    def __str__(self) -> str:
        return f"{self.name} for {self.patient}"

    @property
    def is_scheduled(self) -> bool:
        return bool(self.times or self.interval_hours or self.rrule)


class PlanRevision(models.Model):
    """One change to a plan: who, when, which fields from what to what, and the findings acknowledged with it."""

    plan = models.ForeignKey(MedicationPlan, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    changes = models.JSONField(default=dict)  # {field: [old, new]}; the first revision: {field: [None, value]}
    acknowledged_findings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["plan", "number"]
        constraints = [models.UniqueConstraint(fields=["plan", "number"], name="planrevision_number_once")]

    def __str__(self) -> str:
        return f"{self.plan_id} r{self.number}"


# --- Doses ---------------------------------------------------------------------------------------------------------


class DoseStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    TAKEN = "taken", "Taken"
    SKIPPED = "skipped", "Skipped"
    MISSED = "missed", "Missed"


class DoseQuerySet(PatientOwnedQuerySet):
    patient_field = "patient"
    access_scope = Scope.MEDICATIONS


class Dose(models.Model):
    """One dose: scheduled (materialised ahead from the plan) or as needed (logged, `scheduled_at` empty).

    `local_date` is the patient's local day of the dose (adherence counts by it). `late`: taken after the grace
    window, or logged after it was marked missed.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    plan = models.ForeignKey(MedicationPlan, on_delete=models.CASCADE, related_name="doses")
    patient = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    scheduled_at = models.DateTimeField(null=True, blank=True)
    local_date = models.DateField()
    status = models.CharField(max_length=16, choices=DoseStatus.choices, default=DoseStatus.SCHEDULED)
    quantity = models.DecimalField(max_digits=10, decimal_places=3)
    taken_at = models.DateTimeField(null=True, blank=True)
    late = models.BooleanField(default=False)
    skip_reason = models.CharField(max_length=300, blank=True)
    note = models.CharField(max_length=500, blank=True)
    logged_at = models.DateTimeField(null=True, blank=True)
    logged_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # The dose reminder's claim: set by the conditional update that sends it.
    reminded_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DoseQuerySet.as_manager()

    class Meta:
        ordering = ["-local_date", "-scheduled_at"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "scheduled_at"], name="dose_once_per_plan_time"),
            models.CheckConstraint(
                condition=Q(status="taken", taken_at__isnull=False) | (~Q(status="taken") & Q(taken_at__isnull=True)),
                name="dose_taken_has_time",
            ),
        ]
        indexes = [
            # The dose list and adherence: a patient's doses by local day.
            models.Index(fields=["patient", "local_date"], name="dose_patient_day_idx"),
            # The reminder and missed-dose jobs: scheduled doses by time.
            models.Index(fields=["scheduled_at"], name="dose_open_idx", condition=Q(status="scheduled")),
        ]

    def __str__(self) -> str:
        when = self.scheduled_at.isoformat() if self.scheduled_at else "as needed"
        return f"{self.plan_id} {when} ({self.status})"
