"""Anomaly alerts: the rules, the checks that read a patient's readings against them, and alert episodes.

Rules: a default per metric type made from the catalog's thresholds (`sync_default_rules`), and per-patient
overrides. Threshold limits are read one way everywhere: a value breaches a high limit when it is at or above
it and a low limit when it is below it (the catalog's limits are the first abnormal high value and the first
normal low value: ≥ 140 mmHg systolic, < 70 mg/dL glucose).

Checks are idempotent. They rebuild the episodes of a window of readings from the readings alone and match
them to stored alerts by time overlap, so running them twice, or over a re-delivered batch, raises nothing
twice. An episode opens when a run of consecutive out-of-range readings meets the rule's confirmation and
persistence, and closes on the first reading back in range by a hysteresis margin, so values hovering at a
limit do not open and close alerts over and over.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, Min, Q, QuerySet, Value, When
from django.utils import timezone

from accounts.models import User
from config.sweeps import Sweep

from .catalog import catalog_rows, get_catalog
from .display import format_value
from .events import emit_alert_event
from .models import (
    AlertDirection,
    AlertRule,
    AlertStatus,
    BaselineDirection,
    DailySummary,
    HealthAlert,
    MetricType,
    Reading,
    RuleKind,
    Severity,
)

HYSTERESIS = 0.02  # back in range means 2 % inside the limit
LOOKBACK_DAYS = 31  # readings older than this raise no alerts (a backfill of last year's data stays quiet)
BASELINE_HYSTERESIS = 0.5  # a baseline episode closes once |z| falls half a standard deviation under the limit

# Confirmation and persistence the catalog's notes ask for; every other type alerts on one reading.
THRESHOLD_DEFAULTS: dict[str, dict[str, Any]] = {
    # A crisis (≥ 180 / ≥ 120) is confirmed by a repeat reading within 15 minutes; until then it is a warning.
    "blood_pressure": {"min_readings": 2, "confirm_minutes": 15, "persist_critical_only": True},
    # Tachycardia and bradycardia count when sustained for 10 minutes, not for one spike.
    "heart_rate": {"min_readings": 2, "sustain_minutes": 10},
    # Pulse oximeters read ±4 % near 90 %: two readings in a row.
    "oxygen_saturation": {"min_readings": 2},
}
# Types without absolute thresholds, checked against the patient's own 30-day baseline.
BASELINE_DEFAULTS: dict[str, str] = {
    "resting_heart_rate": BaselineDirection.ABOVE,
    "heart_rate_variability_sdnn": BaselineDirection.BELOW,
    "heart_rate_variability_rmssd": BaselineDirection.BELOW,
    "body_weight": BaselineDirection.ABOVE,  # fluid retention: weight gain over days
}
THRESHOLD_FIELDS = (
    "warn_low",
    "warn_high",
    "critical_low",
    "critical_high",
    "secondary_warn_high",
    "secondary_critical_high",
)
DECIDING_FIELDS = (
    *THRESHOLD_FIELDS,
    "min_readings",
    "sustain_minutes",
    "confirm_minutes",
    "persist_critical_only",
    "baseline_days",
    "z_threshold",
    "min_baseline_days",
    "baseline_direction",
)
WARNING, CRITICAL = 1, 2
SEVERITY = {WARNING: Severity.WARNING, CRITICAL: Severity.CRITICAL}


# --- Rules -----------------------------------------------------------------------------------


def default_rule_specs() -> list[dict[str, Any]]:
    """The default rules the catalog implies: thresholds where it has them, baselines where it does not."""
    specs = []
    for row in catalog_rows():
        thresholds = {name: row[name] for name in THRESHOLD_FIELDS}
        if any(value is not None for value in thresholds.values()):
            specs.append(
                {"metric_type_id": row["id"], "kind": RuleKind.THRESHOLD, **thresholds}
                | THRESHOLD_DEFAULTS.get(row["code"], {})
            )
        if row["code"] in BASELINE_DEFAULTS:
            specs.append(
                {
                    "metric_type_id": row["id"],
                    "kind": RuleKind.BASELINE,
                    "baseline_direction": BASELINE_DEFAULTS[row["code"]],
                }
            )
    return specs


def sync_default_rules(rule_model: Any = AlertRule) -> int:
    """Create or update the default rules; a changed rule gets a new version. Answers how many there are."""
    specs = default_rule_specs()
    for spec in specs:
        rule = rule_model.objects.filter(
            user__isnull=True, metric_type_id=spec["metric_type_id"], kind=spec["kind"], is_active=True
        ).first()
        if rule is None:
            rule_model.objects.create(**spec)
            continue
        changed = False
        for name in DECIDING_FIELDS:
            wanted = spec.get(name, rule_model._meta.get_field(name).get_default())
            if getattr(rule, name) != wanted:
                setattr(rule, name, wanted)
                changed = True
        if changed:
            rule.version += 1
            rule.save()
    return len(specs)


def effective_rules(*, user_id: Any, type_ids: Iterable[int] | None = None) -> dict[tuple[int, str], AlertRule]:
    """The rule that applies to each (type, kind) for a patient: their override, else the default."""
    rules = AlertRule.objects.filter(Q(user_id=user_id) | Q(user__isnull=True), is_active=True)
    if type_ids is not None:
        rules = rules.filter(metric_type_id__in=list(type_ids))
    chosen: dict[tuple[int, str], AlertRule] = {}
    for rule in sorted(rules, key=lambda r: r.user_id is not None):  # overrides last, so they win
        chosen[(rule.metric_type_id, rule.kind)] = rule
    return chosen


def save_rule_override(*, rule: AlertRule) -> AlertRule:
    """Save a patient's override; the version goes up when anything that decides an alert changed."""
    rule.full_clean(exclude=["user", "metric_type", "created_by"])
    _check_rule(rule)
    if rule._state.adding:
        try:
            with transaction.atomic():
                rule.save()
        except IntegrityError:
            raise ValidationError(
                {"metric_type": [f"This patient already has an active {rule.kind} rule for {rule.metric_type.code}."]}
            ) from None
        return rule
    before = AlertRule.objects.get(pk=rule.pk)
    if any(getattr(before, name) != getattr(rule, name) for name in DECIDING_FIELDS):
        rule.version = before.version + 1
    rule.save()
    return rule


def _check_rule(rule: AlertRule) -> None:
    if rule.kind == RuleKind.THRESHOLD and all(getattr(rule, name) is None for name in THRESHOLD_FIELDS):
        raise ValidationError({"warn_high": ["A threshold rule needs at least one limit."]})
    pairs = [("warn_low", "warn_high"), ("critical_low", "warn_low"), ("warn_high", "critical_high")]
    for low, high in pairs:
        a, b = getattr(rule, low), getattr(rule, high)
        if a is not None and b is not None and a > b:
            raise ValidationError({low: [f"{low} ({a:g}) must not be above {high} ({b:g})."]})
    if rule.min_readings < 1:
        raise ValidationError({"min_readings": ["At least 1."]})
    if rule.z_threshold <= BASELINE_HYSTERESIS:
        raise ValidationError({"z_threshold": [f"Must be above {BASELINE_HYSTERESIS}."]})


def deactivate_rule_override(*, rule: AlertRule) -> None:
    """Overrides are switched off, not deleted: alerts keep pointing at the rule that raised them."""
    AlertRule.objects.filter(pk=rule.pk).update(is_active=False, updated_at=timezone.now())


# --- Threshold episodes (pure) -----------------------------------------------------------------


@dataclass(slots=True)
class Point:
    id: Any
    at: datetime
    value: float
    secondary: float | None


@dataclass(slots=True)
class Day:
    day: date
    value: float
    first_at: datetime  # the day's first reading
    z: float | None = None
    mean: float | None = None


@dataclass
class Episode:
    direction: str
    level: int
    started_at: datetime
    last_at: datetime
    points: list[Point] = field(default_factory=list)
    resolved_at: datetime | None = None
    confirmed: bool = True  # False: an unconfirmed critical reading, held at warning
    days: list[Day] = field(default_factory=list)  # baseline episodes: the days past the limit
    reading_ids: list[Any] = field(default_factory=list)

    def extreme(self) -> float:
        values = [p.value for p in self.points]
        return max(values) if self.direction in (AlertDirection.HIGH, AlertDirection.ABOVE_BASELINE) else min(values)


def reading_level(rule: AlertRule, point: Point, direction: str) -> int:
    """0 in range, 1 past a warning limit, 2 past a critical limit, on one side."""
    if direction == AlertDirection.HIGH:
        checks = [(point.value, rule.critical_high, rule.warn_high)]
        if point.secondary is not None:
            checks.append((point.secondary, rule.secondary_critical_high, rule.secondary_warn_high))
        level = 0
        for value, critical, warning in checks:
            if critical is not None and value >= critical:
                level = max(level, CRITICAL)
            elif warning is not None and value >= warning:
                level = max(level, WARNING)
        return level
    if rule.critical_low is not None and point.value < rule.critical_low:
        return CRITICAL
    if rule.warn_low is not None and point.value < rule.warn_low:
        return WARNING
    return 0


def back_in_range(rule: AlertRule, point: Point, direction: str) -> bool:
    """In range by the hysteresis margin on that side (values at a limit keep an episode open)."""
    if direction == AlertDirection.HIGH:
        checks = [(point.value, _first(rule.warn_high, rule.critical_high))]
        if point.secondary is not None:
            checks.append((point.secondary, _first(rule.secondary_warn_high, rule.secondary_critical_high)))
        return all(limit is None or value < limit * (1 - HYSTERESIS) for value, limit in checks)
    limit = _first(rule.warn_low, rule.critical_low)
    return limit is None or point.value >= limit * (1 + HYSTERESIS)


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def _qualifies(rule: AlertRule, run: list[Point], level: int) -> bool:
    """Whether a run of consecutive readings at or past `level` meets the rule's confirmation and persistence."""
    if not run:
        return False
    if level == WARNING and rule.persist_critical_only:
        return True
    needed = max(rule.min_readings, 1)
    if len(run) < needed:
        return False
    if run[-1].at - run[0].at < timedelta(minutes=rule.sustain_minutes):
        return False
    if rule.confirm_minutes is not None:
        # Some `needed` readings in a row within the window.
        window = timedelta(minutes=rule.confirm_minutes)
        return any(run[i + needed - 1].at - run[i].at <= window for i in range(len(run) - needed + 1))
    return True


def threshold_episodes(rule: AlertRule, points: list[Point]) -> list[Episode]:
    """The episodes, high and low, in time-ordered readings."""
    episodes: list[Episode] = []
    for direction in (AlertDirection.HIGH, AlertDirection.LOW):
        current: Episode | None = None
        runs: dict[int, list[Point]] = {WARNING: [], CRITICAL: []}
        for point in points:
            level = reading_level(rule, point, direction)
            for threshold in (WARNING, CRITICAL):
                runs[threshold] = [*runs[threshold], point] if level >= threshold else []
            if current is None:
                if level and _qualifies(rule, runs[WARNING], WARNING):
                    confirmed = _qualifies(rule, runs[CRITICAL], CRITICAL)
                    current = Episode(
                        direction=direction,
                        level=CRITICAL if confirmed else WARNING,
                        started_at=runs[WARNING][0].at,
                        last_at=point.at,
                        points=list(runs[WARNING]),
                        confirmed=confirmed or not runs[CRITICAL],
                    )
            elif level:
                current.points.append(point)
                current.last_at = point.at
                if current.level < CRITICAL and _qualifies(rule, runs[CRITICAL], CRITICAL):
                    current.level, current.confirmed = CRITICAL, True
                elif runs[CRITICAL] and current.level < CRITICAL:
                    current.confirmed = False
            elif back_in_range(rule, point, direction):
                current.resolved_at = current.last_at = point.at
                episodes.append(current)
                current = None
            else:  # between the limit and the hysteresis margin: neither worse nor over
                current.last_at = point.at
        if current is not None:
            episodes.append(current)
    return episodes


# --- Baseline episodes (pure) ------------------------------------------------------------------


def baseline_episodes(rule: AlertRule, days: list[Day], check_from: date) -> list[Episode]:
    """Episodes of days whose value is `z_threshold` standard deviations from the previous `baseline_days`."""
    directions = {
        BaselineDirection.ABOVE: (AlertDirection.ABOVE_BASELINE,),
        BaselineDirection.BELOW: (AlertDirection.BELOW_BASELINE,),
    }.get(rule.baseline_direction, (AlertDirection.ABOVE_BASELINE, AlertDirection.BELOW_BASELINE))
    values = {d.day: d.value for d in days}
    for entry in days:
        window = [
            values[d] for d in (entry.day - timedelta(days=n) for n in range(1, rule.baseline_days + 1)) if d in values
        ]
        if len(window) >= max(rule.min_baseline_days, 2):
            mean, spread = statistics.fmean(window), statistics.stdev(window)
            spread = max(spread, abs(mean) * 0.005, 1e-9)  # a flat baseline still tolerates measurement noise
            entry.z, entry.mean = (entry.value - mean) / spread, mean
    found: list[Episode] = []
    for direction in directions:
        sign = 1 if direction == AlertDirection.ABOVE_BASELINE else -1
        current: Episode | None = None
        for entry in (d for d in days if d.day >= check_from and d.z is not None):
            z = sign * entry.z
            if current is None:
                if z >= rule.z_threshold:
                    current = Episode(
                        direction=direction, level=WARNING, started_at=entry.first_at, last_at=entry.first_at
                    )
                    current.days.append(entry)
                    current.points.append(Point(None, entry.first_at, entry.value, None))
            elif z >= rule.z_threshold - BASELINE_HYSTERESIS:
                current.days.append(entry)
                current.points.append(Point(None, entry.first_at, entry.value, None))
                current.last_at = entry.first_at
            else:
                current.resolved_at = current.last_at = entry.first_at
                found.append(current)
                current = None
        if current is not None:
            found.append(current)
    return found


# --- Checks: readings in, alerts out ---------------------------------------------------------------

MAX_LINKED_READINGS = 50  # an alert links the readings that opened it, not every reading of a long episode


def check_anomalies(*, user_id: Any, days: Iterable[tuple[int, date]], now: datetime | None = None) -> dict[str, int]:
    """Bring a patient's alerts up to date with the readings of the touched (type, local day) pairs.

    Runs after the day's rollups are rebuilt (the baseline checks read them). Answers counts of
    alerts opened, escalated and resolved.
    """
    now = now or timezone.now()
    earliest: dict[int, date] = {}
    for type_id, day in days:
        earliest[type_id] = min(earliest.get(type_id, day), day)
    counts = {"opened": 0, "escalated": 0, "resolved": 0}
    if not earliest:
        return counts
    floor = (now - timedelta(days=LOOKBACK_DAYS)).date()
    for (type_id, kind), rule in effective_rules(user_id=user_id, type_ids=earliest).items():
        since = max(earliest[type_id], floor)
        if kind == RuleKind.THRESHOLD:
            _check_thresholds(user_id=user_id, rule=rule, since=since, counts=counts)
        else:
            _check_baseline(user_id=user_id, rule=rule, since=since, counts=counts)
    return counts


def _open_since(user_id: Any, rule: AlertRule, directions: tuple[str, ...]) -> datetime | None:
    return (
        HealthAlert.objects.filter(
            user_id=user_id, metric_type_id=rule.metric_type_id, direction__in=directions, resolved_at__isnull=True
        )
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
    )


def _check_thresholds(*, user_id: Any, rule: AlertRule, since: date, counts: dict[str, int]) -> None:
    directions = (AlertDirection.HIGH, AlertDirection.LOW)
    # From the day before (a run may cross midnight, and local days straddle UTC ones), or from the start of
    # an episode still open, so the whole of it is in view.
    start = datetime.combine(since - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    open_since = _open_since(user_id, rule, directions)
    if open_since is not None:
        start = min(start, open_since)
    points = [
        Point(*row)
        for row in Reading.objects.filter(user_id=user_id, metric_type_id=rule.metric_type_id, recorded_at__gte=start)
        .order_by("recorded_at", "id")
        .values_list("id", "recorded_at", "value", "secondary_value")
    ]
    episodes = threshold_episodes(rule, points)
    _store(user_id=user_id, rule=rule, episodes=episodes, directions=directions, window_start=start, counts=counts)


def _check_baseline(*, user_id: Any, rule: AlertRule, since: date, counts: dict[str, int]) -> None:
    directions = (AlertDirection.ABOVE_BASELINE, AlertDirection.BELOW_BASELINE)
    open_since = _open_since(user_id, rule, directions)
    check_from = min(since, open_since.date()) if open_since is not None else since
    readings = Reading.objects.filter(user_id=user_id, metric_type_id=rule.metric_type_id)
    first_at = dict(
        readings.filter(local_date__gte=check_from)
        .values("local_date")
        .annotate(first=Min("recorded_at"))
        .values_list("local_date", "first")
        .order_by()
    )
    days = [
        Day(day=day, value=mean, first_at=first_at.get(day) or datetime.combine(day, datetime.min.time(), tzinfo=UTC))
        for day, mean in DailySummary.objects.filter(
            user_id=user_id,
            metric_type_id=rule.metric_type_id,
            local_date__gte=check_from - timedelta(days=rule.baseline_days),
        )
        .order_by("local_date")
        .values_list("local_date", "mean")
    ]
    episodes = baseline_episodes(rule, days, check_from)
    wanted = {entry.day for episode in episodes for entry in episode.days}
    ids_by_day: dict[date, list[Any]] = {}
    for reading_id, day in (
        readings.filter(local_date__in=wanted).order_by("recorded_at").values_list("id", "local_date")
    ):
        ids_by_day.setdefault(day, []).append(reading_id)
    for episode in episodes:
        episode.reading_ids = [reading_id for entry in episode.days for reading_id in ids_by_day.get(entry.day, [])]
    window_start = datetime.combine(check_from, datetime.min.time(), tzinfo=UTC) - timedelta(days=1)
    _store(
        user_id=user_id, rule=rule, episodes=episodes, directions=directions, window_start=window_start, counts=counts
    )


def _store(
    *,
    user_id: Any,
    rule: AlertRule,
    episodes: list[Episode],
    directions: tuple[str, ...],
    window_start: datetime,
    counts: dict[str, int],
) -> None:
    """Match episodes to stored alerts by overlapping time; open, escalate or resolve what changed."""
    existing = list(
        HealthAlert.objects.filter(
            user_id=user_id, metric_type_id=rule.metric_type_id, direction__in=directions
        ).filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=window_start))
    )
    metric_type = get_catalog().by_id[rule.metric_type_id]  # in memory: no query per rule
    for episode in episodes:
        if not episode.reading_ids:
            episode.reading_ids = [p.id for p in episode.points if p.id is not None]
        end = episode.resolved_at or episode.last_at
        match = next(
            (
                alert
                for alert in existing
                if alert.direction == episode.direction
                and alert.started_at <= end
                and (alert.resolved_at is None or alert.resolved_at >= episode.started_at)
            ),
            None,
        )
        if match is None:
            alert = _create(user_id=user_id, rule=rule, metric_type=metric_type, episode=episode)
            if alert is not None:
                existing.append(alert)
                if alert.resolved_at is None:
                    counts["opened"] += 1
                    emit_alert_event(alert=alert, event="opened")
        else:
            _update(match, rule=rule, metric_type=metric_type, episode=episode, counts=counts)


def _create(*, user_id: Any, rule: AlertRule, metric_type: MetricType, episode: Episode) -> HealthAlert | None:
    alert = HealthAlert(
        user_id=user_id,
        metric_type=metric_type,
        rule=rule,
        rule_version=rule.version,
        severity=SEVERITY[episode.level],
        direction=episode.direction,
        status=AlertStatus.OPEN if episode.resolved_at is None else AlertStatus.RESOLVED,
        message=explain(metric_type, rule, episode),
        value=episode.extreme(),
        started_at=episode.started_at,
        last_reading_at=episode.last_at,
        resolved_at=episode.resolved_at,
    )
    try:
        with transaction.atomic():
            alert.save()
            alert.readings.add(*episode.reading_ids[:MAX_LINKED_READINGS])
    except IntegrityError:  # a concurrent check opened the same episode: one alert either way
        return None
    return alert


def _update(alert: HealthAlert, *, rule: AlertRule, metric_type: MetricType, episode: Episode, counts: dict) -> None:
    changed: list[str] = []
    events: list[str] = []
    high = episode.direction in (AlertDirection.HIGH, AlertDirection.ABOVE_BASELINE)
    extreme = max(alert.value, episode.extreme()) if high else min(alert.value, episode.extreme())
    if alert.resolved_at is None:
        if SEVERITY[episode.level] == Severity.CRITICAL and alert.severity != Severity.CRITICAL:
            alert.severity = Severity.CRITICAL
            changed.append("severity")
            events.append("escalated")
            counts["escalated"] += 1
        if extreme != alert.value:
            alert.value = extreme
            changed.append("value")
        if episode.last_at > alert.last_reading_at:
            alert.last_reading_at = episode.last_at
            changed.append("last_reading_at")
        if episode.resolved_at is not None:
            alert.resolved_at, alert.status = episode.resolved_at, AlertStatus.RESOLVED
            changed += ["resolved_at", "status"]
            events.append("resolved")
            counts["resolved"] += 1
    if not changed:
        return
    alert.message = explain(metric_type, rule, episode)
    with transaction.atomic():
        alert.save(update_fields=[*changed, "message", "updated_at"])
        linked = alert.readings.count()
        if linked < MAX_LINKED_READINGS:
            alert.readings.add(*episode.reading_ids[: MAX_LINKED_READINGS - linked])
    for event in events:
        emit_alert_event(alert=alert, event=event)


def explain(metric_type: MetricType, rule: AlertRule, episode: Episode) -> str:
    """A short human explanation: what, how far past which limit, for how long.

    In the canonical unit's human label, values rounded to the catalog's precision (display.py).
    """
    unit, name = metric_type.unit_label or metric_type.unit, metric_type.display_name
    precision = metric_type.precision

    def number(value: float) -> str:
        return format_value(value, precision)

    count = len(episode.days) if episode.days else len(episode.points)
    if episode.days:
        worst = max(episode.days, key=lambda d: abs(d.z or 0))
        side = "above" if episode.direction == AlertDirection.ABOVE_BASELINE else "below"
        text = (
            f"{name} {number(worst.value)} {unit} on {worst.day:%Y-%m-%d} is {abs(worst.z or 0):.1f} standard "
            f"deviations {side} the {rule.baseline_days}-day baseline ({number(worst.mean)} {unit}); "
            f"{count} day(s) so far."
        )
    else:
        high = episode.direction == AlertDirection.HIGH
        worst = (max if high else min)(episode.points, key=lambda p: p.value)
        shown = number(worst.value) + (f"/{number(worst.secondary)}" if worst.secondary is not None else "")
        if high:
            limit = rule.critical_high if episode.level == CRITICAL else _first(rule.warn_high, rule.critical_high)
            limits = f"at or above {limit:g}" if limit is not None else "above range"
            if rule.secondary_warn_high is not None:
                second = rule.secondary_critical_high if episode.level == CRITICAL else rule.secondary_warn_high
                limits += f" (or diastolic at or above {second:g})"
        else:
            limit = rule.critical_low if episode.level == CRITICAL else _first(rule.warn_low, rule.critical_low)
            limits = f"below {limit:g}"
        minutes = int((episode.last_at - episode.started_at).total_seconds() // 60)
        text = (
            f"{name} {limits} {unit}: {count} reading(s) over {minutes} min, "
            f"{'highest' if high else 'lowest'} {shown} {unit}."
        )
        if not episode.confirmed:
            text += (
                f" One reading is in the critical range: repeat it within {rule.confirm_minutes} minutes to confirm."
            )
    if episode.resolved_at is not None:
        text += f" Back in range at {episode.resolved_at:%Y-%m-%d %H:%M} UTC."
    return text


# Open before acknowledged before resolved, critical first, newest first: the order a clinician works in.
TRIAGE_ORDER = (
    Case(
        When(status=AlertStatus.OPEN, then=Value(0)),
        When(status=AlertStatus.ACKNOWLEDGED, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    ).asc(),
    Case(When(severity=Severity.CRITICAL, then=Value(0)), default=Value(1), output_field=IntegerField()).asc(),
    F("started_at").desc(),
)


def triage_order(queryset: QuerySet) -> QuerySet:
    return queryset.order_by(*TRIAGE_ORDER)


def acknowledge_alert(*, alert: HealthAlert, by: User) -> HealthAlert:
    """Record who saw the alert and when; an acknowledged alert stays open until values are back in range."""
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = timezone.now(), by
        fields = ["acknowledged_at", "acknowledged_by", "updated_at"]
        if alert.status == AlertStatus.OPEN:
            alert.status = AlertStatus.ACKNOWLEDGED
            fields.append("status")
        alert.save(update_fields=fields)
        emit_alert_event(alert=alert, event="acknowledged")
    return alert


def sweep_anomalies(*, since: datetime | None = None) -> dict[str, int]:
    """The periodic safety net: re-check every (patient, type, day) whose rollup changed recently."""
    since = since or timezone.now() - timedelta(hours=2)
    by_user: dict[Any, set[tuple[int, date]]] = {}
    for user_id, type_id, day in (
        DailySummary.objects.filter(updated_at__gte=since)
        .values_list("user_id", "metric_type_id", "local_date")
        .order_by()
    ):
        by_user.setdefault(user_id, set()).add((type_id, day))
    totals = {"opened": 0, "escalated": 0, "resolved": 0}
    sweep = Sweep("sweep_anomalies")  # one patient's failure is logged; the others are still checked
    for user_id, days in by_user.items():
        with sweep.item(user=user_id):
            for key, value in check_anomalies(user_id=user_id, days=days).items():
                totals[key] += value
    return {**totals, "failed": sweep.failed}
