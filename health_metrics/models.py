"""The metric catalog, readings, rollups, targets, alert rules and alerts, and health scores."""

from __future__ import annotations

import uuid
from functools import cached_property

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Scope, TimeStampedModel
from accounts.querysets import PatientOwnedQuerySet

from .units import normalize


class Aggregation(models.TextChoices):
    MEAN = "mean", "Mean"
    SUM = "sum", "Sum"
    LAST = "last", "Last"


class ValueKind(models.TextChoices):
    SINGLE = "single", "One value"
    PAIR = "pair", "Two components (systolic / diastolic)"


def within_warning_limits(
    value: float, secondary: float | None, low: float | None, high: float | None, secondary_high: float | None
) -> bool:
    """A low limit is the lowest normal value, a high limit the first abnormal one; no limit on a side, no check."""
    if low is not None and value < low:
        return False
    if high is not None and value >= high:
        return False
    return secondary is None or secondary_high is None or secondary < secondary_high


class MetricType(models.Model):
    """One kind of measurement: its codes, canonical UCUM unit, accepted units, ranges and thresholds.

    Loaded from health_metrics/data/metric_catalog.csv by a data migration; ids are stable.
    """

    id = models.PositiveSmallIntegerField(primary_key=True)
    code = models.SlugField(max_length=64, unique=True)
    display_name = models.CharField(max_length=100)
    aliases = models.JSONField(default=list, blank=True)
    loinc = models.CharField(max_length=16, blank=True)
    unit = models.CharField(max_length=32, help_text="Canonical UCUM unit; values are stored in it.")
    accepted_units = models.JSONField(default=list, blank=True)
    plausible_min = models.FloatField()
    plausible_max = models.FloatField()
    warn_low = models.FloatField(null=True, blank=True)
    warn_high = models.FloatField(null=True, blank=True)
    critical_low = models.FloatField(null=True, blank=True)
    critical_high = models.FloatField(null=True, blank=True)
    aggregation = models.CharField(max_length=8, choices=Aggregation.choices)
    value_kind = models.CharField(max_length=8, choices=ValueKind.choices, default=ValueKind.SINGLE)
    is_interval = models.BooleanField(default=False, help_text="Carries a start and an end (sleep).")
    molar_mass_g_per_mol = models.FloatField(null=True, blank=True)
    # Blood pressure: the systolic / diastolic components.
    primary_loinc = models.CharField(max_length=16, blank=True)
    secondary_loinc = models.CharField(max_length=16, blank=True)
    secondary_min = models.FloatField(null=True, blank=True)
    secondary_max = models.FloatField(null=True, blank=True)
    secondary_warn_high = models.FloatField(null=True, blank=True)
    secondary_critical_high = models.FloatField(null=True, blank=True)
    notes = models.TextField(blank=True)
    # How values are shown (health_metrics/display.py): decimals and a human label for the canonical unit, the
    # unit imperial readers see, and the other units a person may choose for this type.
    precision = models.PositiveSmallIntegerField(default=0, help_text="Decimals shown in the canonical unit.")
    unit_label = models.CharField(max_length=32, blank=True, help_text="Human label of the canonical unit (bpm).")
    imperial_unit = models.CharField(
        max_length=32, blank=True, help_text="UCUM unit shown to imperial readers; blank: the canonical unit."
    )
    imperial_unit_label = models.CharField(max_length=32, blank=True)
    imperial_precision = models.PositiveSmallIntegerField(null=True, blank=True)
    display_units = models.JSONField(
        default=list, blank=True, help_text='Other units one may choose: [{"unit", "label", "precision"}].'
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def is_pair(self) -> bool:
        return self.value_kind == ValueKind.PAIR

    @cached_property
    def unit_keys(self) -> frozenset[str]:
        return frozenset(normalize(u) for u in [self.unit, *self.accepted_units])

    def is_normal(self, value: float, secondary: float | None = None) -> bool:
        """Within the warning thresholds (no threshold on a side means no limit there).

        Read as the alert checks read them: a low limit is the lowest normal value, a high limit the first
        abnormal one (systolic 140 is stage 2 hypertension, glucose 70 is normal).
        """
        return within_warning_limits(value, secondary, self.warn_low, self.warn_high, self.secondary_warn_high)


class SourceKind(models.TextChoices):
    MANUAL = "manual", "Manual entry"
    DEVICE = "device", "Device"
    INTEGRATION = "integration", "Wearable connection"
    IMPORT = "import", "Import"


# Higher wins when several sources report a daily total for the same type and day.
DEFAULT_PRIORITY = {
    SourceKind.DEVICE: 40,
    SourceKind.INTEGRATION: 30,
    SourceKind.IMPORT: 20,
    SourceKind.MANUAL: 10,
}


class PatientDataQuerySet(PatientOwnedQuerySet):
    """A patient's health data (`user`), under the access rule's metrics scope."""

    access_scope = Scope.METRICS


class DataSource(TimeStampedModel):
    """Where a patient's readings come from: their manual entries, a device, a wearable connection, an import.

    Devices and connections point at their own source (this app knows no sender). The sources the app
    itself sends for (`is_app_default`) are one per user and kind, made when first needed. When several
    sources report a daily total for the same type and day, the day takes the highest `priority` (ties:
    the source made first), never a sum.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="data_sources", db_index=False
    )
    kind = models.CharField(max_length=16, choices=SourceKind.choices)
    name = models.CharField(max_length=100)
    priority = models.PositiveSmallIntegerField(help_text="Higher wins for daily totals.")
    is_app_default = models.BooleanField(
        default=False, help_text="The user's own source of this kind for readings the app sends."
    )

    objects = PatientDataQuerySet.as_manager()

    class Meta:
        ordering = ["-priority", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(kind=SourceKind.MANUAL), name="datasource_one_manual_per_user"
            ),
            models.UniqueConstraint(
                fields=["user", "kind"], condition=Q(is_app_default=True), name="datasource_one_app_default_per_kind"
            ),
        ]
        indexes = [
            # A user's sources in priority order (the sources list, the app's source lookup by kind).
            models.Index(fields=["user", "-priority", "created_at"], name="datasource_user_priority_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class Reading(models.Model):
    """One measurement, stored in the type's canonical unit, with what the client sent kept beside it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No single-column indexes: the composite ones below start with user (and then type).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="readings", db_index=False
    )
    metric_type = models.ForeignKey(MetricType, on_delete=models.PROTECT, related_name="+", db_index=False)
    value = models.FloatField(help_text="Canonical unit; the systolic value for blood pressure.")
    secondary_value = models.FloatField(null=True, blank=True, help_text="Diastolic, for blood pressure.")
    original_value = models.FloatField()
    original_secondary_value = models.FloatField(null=True, blank=True)
    original_unit = models.CharField(max_length=32)
    recorded_at = models.DateTimeField(help_text="UTC.")
    utc_offset_minutes = models.SmallIntegerField(help_text="The reading's own UTC offset.")
    ended_at = models.DateTimeField(null=True, blank=True)
    # The local calendar day the reading belongs to (its own local time; intervals: where they end).
    local_date = models.DateField()
    # No single-column index: the unique constraints below start with it.
    data_source = models.ForeignKey(DataSource, on_delete=models.CASCADE, related_name="readings", db_index=False)
    client_id = models.UUIDField(null=True, blank=True, help_text="Client-made id; retries store nothing twice.")
    external_id = models.CharField(max_length=255, blank=True)
    # Sum types only: a point reading is the day's running total from its data source; a later
    # delivery replaces it instead of adding to it (one row per source, type and local day).
    is_daily_total = models.BooleanField(default=False, editable=False)
    is_abnormal = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PatientDataQuerySet.as_manager()

    class Meta:
        ordering = ["-recorded_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "client_id"], condition=Q(client_id__isnull=False), name="reading_unique_client_id"
            ),
            models.UniqueConstraint(
                fields=["data_source", "metric_type", "recorded_at"], name="reading_one_per_source_type_time"
            ),
            models.UniqueConstraint(
                fields=["data_source", "external_id"], condition=~Q(external_id=""), name="reading_unique_external_id"
            ),
            models.UniqueConstraint(
                fields=["data_source", "metric_type", "local_date"],
                condition=Q(is_daily_total=True),
                name="reading_one_daily_total_per_source",
            ),
            models.CheckConstraint(
                condition=Q(secondary_value__isnull=True) | Q(value__gt=models.F("secondary_value")),
                name="reading_systolic_above_diastolic",
            ),
        ]
        indexes = [
            # A user's series of one type, newest first (lists, stats, trends).
            models.Index(fields=["user", "metric_type", "-recorded_at"], name="reading_user_type_time_idx"),
            # Day, week and month buckets of one type (summaries, rollups).
            models.Index(fields=["user", "metric_type", "local_date"], name="reading_user_type_day_idx"),
            # A user's newest readings of every type (the unfiltered list).
            models.Index(fields=["user", "-recorded_at"], name="reading_user_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_type_id} {self.display_value} at {self.recorded_at:%Y-%m-%d %H:%M}"

    @property
    def display_value(self) -> str:
        """The canonical value at the catalog's precision for its type: `74.8`, `72`, `120/80` (display.py)."""
        from .catalog import get_catalog
        from .display import canonical_unit

        return canonical_unit(get_catalog().by_id[self.metric_type_id]).text(self.value, self.secondary_value)


class SummaryFigures(models.Model):
    """What every rollup holds: count, min, max, mean, (exact) median and sum, and the diastolic's."""

    FIGURES = (
        "count",
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

    count = models.PositiveIntegerField()
    min = models.FloatField()
    max = models.FloatField()
    mean = models.FloatField()
    median = models.FloatField()
    sum = models.FloatField()
    secondary_min = models.FloatField(null=True, blank=True)
    secondary_max = models.FloatField(null=True, blank=True)
    secondary_mean = models.FloatField(null=True, blank=True)
    secondary_median = models.FloatField(null=True, blank=True)

    class Meta:
        abstract = True


class DailySummary(SummaryFigures):
    """Per (user, type, local day): count, min, max, mean, median, sum; kept current by Celery.

    Sum types hold the day's merged value: the highest-priority source's readings, never a sum across sources.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    metric_type = models.ForeignKey(MetricType, on_delete=models.PROTECT, related_name="+")
    local_date = models.DateField()
    # Every source's readings of the day; the figures of a sum type come from one source only.
    reading_count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PatientDataQuerySet.as_manager()

    class Meta:
        ordering = ["-local_date"]
        verbose_name_plural = "daily summaries"
        constraints = [
            models.UniqueConstraint(fields=["user", "metric_type", "local_date"], name="daily_summary_unique_day"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_type_id} {self.local_date}"


class Period(models.TextChoices):
    WEEK = "week", "Week (from Monday)"
    MONTH = "month", "Month"


class PeriodSummary(SummaryFigures):
    """Per (user, type, week or month of the local calendar): the same figures as a day's, from raw values.

    Medians are exact (computed over the period's readings, never from daily medians).
    Recomputed with the days they contain.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    metric_type = models.ForeignKey(MetricType, on_delete=models.PROTECT, related_name="+")
    period = models.CharField(max_length=8, choices=Period.choices)
    start = models.DateField(help_text="The Monday of the week, or the first of the month.")
    updated_at = models.DateTimeField(auto_now=True)

    objects = PatientDataQuerySet.as_manager()

    class Meta:
        ordering = ["-start"]
        verbose_name_plural = "period summaries"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "metric_type", "period", "start"], name="period_summary_unique_bucket"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric_type_id} {self.period} of {self.start}"


class TargetKind(models.TextChoices):
    AT_LEAST = "at_least", "At least"
    AT_MOST = "at_most", "At most"
    RANGE = "range", "Within a range"


class Target(TimeStampedModel):
    """A goal for one metric type: at least / at most a value, or within a range. One active per type."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="metric_targets")
    metric_type = models.ForeignKey(MetricType, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=TargetKind.choices, default=TargetKind.AT_LEAST)
    target_value = models.FloatField(null=True, blank=True, help_text="Canonical unit (at_least / at_most).")
    target_min = models.FloatField(null=True, blank=True, help_text="Canonical unit (range).")
    target_max = models.FloatField(null=True, blank=True, help_text="Canonical unit (range).")
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    notes = models.TextField(blank=True)

    objects = PatientDataQuerySet.as_manager()

    class Meta:
        ordering = ["metric_type_id", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "metric_type"], condition=Q(is_active=True), name="target_one_active_per_type"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric_type_id} target of {self.user_id}"


# --- Alerts and scores ------------------------------------------------------------------------


class RuleKind(models.TextChoices):
    THRESHOLD = "threshold", "Threshold"
    BASELINE = "baseline", "Deviation from the patient's own baseline"


class BaselineDirection(models.TextChoices):
    BOTH = "both", "Either way"
    ABOVE = "above", "Above the baseline"
    BELOW = "below", "Below the baseline"


class AlertRule(TimeStampedModel):
    """When readings of one type raise an alert: fixed thresholds, or a z-score against the patient's baseline.

    Rules without a user are the defaults, made from the catalog's thresholds; a rule with a user overrides
    the default of its type and kind for that patient. `version` goes up whenever what the rule decides
    changes, and every alert records the rule and version that raised it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="alert_rules"
    )
    metric_type = models.ForeignKey(MetricType, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=RuleKind.choices, default=RuleKind.THRESHOLD)
    # Threshold rules, in the canonical unit; a blank side has no limit.
    warn_low = models.FloatField(null=True, blank=True)
    warn_high = models.FloatField(null=True, blank=True)
    critical_low = models.FloatField(null=True, blank=True)
    critical_high = models.FloatField(null=True, blank=True)
    secondary_warn_high = models.FloatField(null=True, blank=True, help_text="Diastolic, for blood pressure.")
    secondary_critical_high = models.FloatField(null=True, blank=True, help_text="Diastolic, for blood pressure.")
    # Confirmation and persistence: a run of consecutive out-of-range readings raises an alert once it has
    # `min_readings` readings, spans at least `sustain_minutes`, and (if set) got them within `confirm_minutes`.
    min_readings = models.PositiveSmallIntegerField(default=1)
    sustain_minutes = models.PositiveIntegerField(default=0)
    confirm_minutes = models.PositiveIntegerField(null=True, blank=True)
    persist_critical_only = models.BooleanField(
        default=False,
        help_text="Warnings alert at once; only the critical level waits for confirmation (blood pressure crisis).",
    )
    # Baseline rules.
    baseline_days = models.PositiveSmallIntegerField(default=30)
    z_threshold = models.FloatField(default=3.0)
    min_baseline_days = models.PositiveSmallIntegerField(default=7)
    baseline_direction = models.CharField(
        max_length=8, choices=BaselineDirection.choices, default=BaselineDirection.BOTH
    )
    version = models.PositiveIntegerField(default=1)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    notes = models.TextField(blank=True)

    objects = PatientDataQuerySet.as_manager()  # for_user: overrides of visible patients (defaults have no user)

    class Meta:
        ordering = ["metric_type_id", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["metric_type", "kind"],
                condition=Q(user__isnull=True, is_active=True),
                name="alertrule_one_default_per_type_kind",
            ),
            models.UniqueConstraint(
                fields=["user", "metric_type", "kind"],
                condition=Q(user__isnull=False, is_active=True),
                name="alertrule_one_override_per_type_kind",
            ),
        ]

    def __str__(self) -> str:
        owner = "default" if self.user_id is None else f"override for {self.user_id}"
        return f"{self.metric_type_id} {self.kind} rule v{self.version} ({owner})"


class Severity(models.TextChoices):
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AlertDirection(models.TextChoices):
    HIGH = "high", "Above range"
    LOW = "low", "Below range"
    ABOVE_BASELINE = "above_baseline", "Above the patient's baseline"
    BELOW_BASELINE = "below_baseline", "Below the patient's baseline"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class HealthAlert(models.Model):
    """One episode of out-of-range values: opened by a rule, closed when values come back in range."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="health_alerts")
    metric_type = models.ForeignKey(MetricType, on_delete=models.PROTECT, related_name="+")
    rule = models.ForeignKey(AlertRule, on_delete=models.PROTECT, related_name="alerts")
    rule_version = models.PositiveIntegerField()
    severity = models.CharField(max_length=16, choices=Severity.choices)
    direction = models.CharField(max_length=16, choices=AlertDirection.choices)
    status = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    message = models.TextField(help_text="A short human explanation.")
    value = models.FloatField(help_text="The most extreme value of the episode, canonical unit.")
    readings = models.ManyToManyField(Reading, related_name="+", blank=True)
    started_at = models.DateTimeField(help_text="The first out-of-range reading of the episode.")
    last_reading_at = models.DateTimeField(help_text="The newest reading the episode has seen.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PatientDataQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "metric_type", "direction"],
                condition=Q(resolved_at__isnull=True),
                name="healthalert_one_open_episode",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "status", "-started_at"], name="healthalert_user_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.severity} {self.metric_type_id} {self.direction} for {self.user_id}"


class DailyHealthScore(models.Model):
    """The 0-100 score of one local day, with the parts it is made of (name, weight, score, contribution)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    local_date = models.DateField()
    score = models.PositiveSmallIntegerField()
    parts = models.JSONField(default=list)
    computed_at = models.DateTimeField(auto_now=True)

    objects = PatientDataQuerySet.as_manager()

    class Meta:
        ordering = ["-local_date"]
        constraints = [
            models.UniqueConstraint(fields=["user", "local_date"], name="healthscore_one_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.score} on {self.local_date} for {self.user_id}"
