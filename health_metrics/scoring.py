"""The daily health score: 0-100 for one local day, made of named, weighted parts.

Each part scores 0-100 from that day's readings (the patient's local calendar, `Reading.local_date`):

- vitals in range (35): the share of the day's readings of types that have a normal range (warning
  thresholds) that fall within it. The patient's own active threshold rule overrides the default rule,
  which overrides the catalog.
- activity (25): the day's steps (the highest-priority source's total, never a sum across sources)
  against the steps target in force that day (8,000 without one),
  capped at 100.
- sleep (25): duration of the sleep that ended that day (7-9 h full marks, falling linearly to 0 at
  4 h and at 12 h), 70 %, and regularity, 30 %: the spread (circular standard deviation) of wake
  times over the last 7 nights, full marks up to 30 min and 0 from 120 min; with fewer than 3
  nights, duration alone.
- resting heart rate (15): the day's resting heart rate against the median of the patient's daily
  means over the 30 days before (at least 7 of them): at or below it full marks, 10 points off per
  beat above, 0 from 10 beats above.

The day's score is the sum of each part's score × weight / 100, rounded (halves up). A part without
data that day has no score, and its weight is shared out over the parts that have data in proportion
to their weights; a day without data in any part has no score at all.
Other apps add parts from their own side through `register_score_part` (medications will add
adherence): health_metrics knows no app above it. A registered part is computed after the built-in
ones and weighed like them.
"""

from __future__ import annotations

import math
import statistics
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Avg, Max, Q

from accounts.models import Profile, User
from config.sweeps import Sweep

from .alerts import effective_rules
from .catalog import get_catalog
from .models import (
    AlertRule,
    DailyHealthScore,
    DailySummary,
    MetricType,
    Reading,
    RuleKind,
    Target,
    TargetKind,
    within_warning_limits,
)
from .selectors import merged

DEFAULT_STEPS_GOAL = 8000
SLEEP_FULL_HOURS = (7.0, 9.0)
SLEEP_ZERO_HOURS = (4.0, 12.0)
SLEEP_WINDOW_NIGHTS = 7
SLEEP_MIN_NIGHTS = 3
SLEEP_REGULARITY_SHARE = 0.3
WAKE_SPREAD_FULL_MINUTES = 30
WAKE_SPREAD_ZERO_MINUTES = 120
RESTING_BASELINE_DAYS = 30
RESTING_MIN_BASELINE_DAYS = 7
RESTING_POINTS_PER_BEAT = 10


@dataclass(frozen=True, slots=True)
class Thresholds:
    """A normal range: the warning thresholds in force for one patient and type (a blank side has no limit)."""

    warn_low: float | None
    warn_high: float | None
    secondary_warn_high: float | None

    @property
    def is_set(self) -> bool:
        return any(limit is not None for limit in (self.warn_low, self.warn_high, self.secondary_warn_high))

    def is_normal(self, value: float, secondary: float | None) -> bool:
        """The same test as MetricType.is_normal and the alert checks: a high limit is the first abnormal value."""
        return within_warning_limits(value, secondary, self.warn_low, self.warn_high, self.secondary_warn_high)


def _thresholds_of(source: MetricType | AlertRule) -> Thresholds:
    return Thresholds(source.warn_low, source.warn_high, source.secondary_warn_high)


def normal_ranges(*, user: User) -> dict[int, Thresholds]:
    """The normal range per metric type for this patient: their override, else the default rule, else the catalog.

    Only types that have a range at all are in the answer. One query.
    """
    ranges = {type_id: _thresholds_of(t) for type_id, t in get_catalog().by_id.items()}
    for (type_id, kind), rule in effective_rules(user_id=user.pk).items():
        if kind == RuleKind.THRESHOLD:
            ranges[type_id] = _thresholds_of(rule)
    return {type_id: limits for type_id, limits in ranges.items() if limits.is_set}


# --- The parts, each from the figures gathered for the day -----------------------------------------


@dataclass(slots=True)
class Part:
    name: str
    score: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class PartSpec:
    """A part of the score: its name, label and base weight, and how to compute it for one patient and day.

    `compute` is None for the built-in parts, which `day_parts` computes together from shared queries.
    """

    name: str
    label: str
    weight: int
    compute: Callable[..., Part] | None = None


# The score's parts, in the order they are shown. Apps above health_metrics add theirs with register_score_part.
PARTS: dict[str, PartSpec] = {
    spec.name: spec
    for spec in (
        PartSpec("vitals", "Vitals in range", 35),
        PartSpec("activity", "Activity", 25),
        PartSpec("sleep", "Sleep", 25),
        PartSpec("resting_heart_rate", "Resting heart rate", 15),
    )
}


def register_score_part(*, name: str, label: str, weight: int, compute: Callable[..., Part]) -> None:
    """Add a part to the score (call from an AppConfig.ready()): `compute(user=, local_date=)` answers its Part.

    Registering a name again replaces it, so a reloaded app does not count twice.
    """
    PARTS[name] = PartSpec(name, label, weight, compute)


def _round(value: float) -> int:
    """Halves up (82.5 is 83), not Python's halves-to-even."""
    return math.floor(value + 0.5)


def _linear(value: float, full: float, zero: float) -> float:
    """100 at `full`, 0 at `zero`, linear between (either direction), clamped to 0-100."""
    return max(0.0, min(100.0, (value - zero) / (full - zero) * 100))


def vitals_part(readings: list[Reading], ranges: dict[int, Thresholds]) -> Part:
    catalog = get_catalog().by_id
    checked = [r for r in readings if r.metric_type_id in ranges]
    if not checked:
        return Part("vitals", None, "No readings with a normal range that day.")
    outside = Counter(
        catalog[r.metric_type_id].display_name.lower()
        for r in checked
        if not ranges[r.metric_type_id].is_normal(r.value, r.secondary_value)
    )
    within = len(checked) - sum(outside.values())
    detail = f"{within} of {len(checked)} readings within range"
    if outside:
        detail += " (outside: " + ", ".join(f"{name} ×{count}" for name, count in sorted(outside.items())) + ")"
    return Part("vitals", _round(within / len(checked) * 100), detail + ".")


def activity_part(steps: float | None, goal: float | None) -> Part:
    if steps is None:
        return Part("activity", None, "No steps recorded that day.")
    whose = "target" if goal else "default goal"
    goal = goal or DEFAULT_STEPS_GOAL
    return Part("activity", _round(min(100.0, steps / goal * 100)), f"{steps:,.0f} steps of {goal:,.0f} ({whose}).")


def sleep_duration_score(hours: float) -> float:
    low, high = SLEEP_FULL_HOURS
    if hours < low:
        return _linear(hours, low, SLEEP_ZERO_HOURS[0])
    if hours > high:
        return _linear(hours, high, SLEEP_ZERO_HOURS[1])
    return 100.0


def wake_spread_minutes(wake_minutes: list[float]) -> float:
    """The circular standard deviation of wake times (minutes after local midnight), so 23:50 and 00:10 are close."""
    angles = [m / 1440 * 2 * math.pi for m in wake_minutes]
    mean = math.atan2(sum(map(math.sin, angles)), sum(map(math.cos, angles))) / (2 * math.pi) * 1440
    offsets = [(m - mean + 720) % 1440 - 720 for m in wake_minutes]
    return math.sqrt(sum(o * o for o in offsets) / len(offsets))


def sleep_part(hours: float | None, wake_minutes: list[float]) -> Part:
    if hours is None:
        return Part("sleep", None, "No sleep ending that day.")
    duration = sleep_duration_score(hours)
    detail = f"{hours:.1f} h asleep"
    if len(wake_minutes) < SLEEP_MIN_NIGHTS:
        return Part("sleep", _round(duration), f"{detail}; wake-time regularity needs {SLEEP_MIN_NIGHTS} nights.")
    spread = wake_spread_minutes(wake_minutes)
    regularity = _linear(spread, WAKE_SPREAD_FULL_MINUTES, WAKE_SPREAD_ZERO_MINUTES)
    score = (1 - SLEEP_REGULARITY_SHARE) * duration + SLEEP_REGULARITY_SHARE * regularity
    return Part(
        "sleep", _round(score), f"{detail}; wake time varies ±{spread:.0f} min over {len(wake_minutes)} nights."
    )


def resting_heart_rate_part(today: float | None, baseline_days: list[float]) -> Part:
    if today is None:
        return Part("resting_heart_rate", None, "No resting heart rate that day.")
    if len(baseline_days) < RESTING_MIN_BASELINE_DAYS:
        return Part(
            "resting_heart_rate",
            None,
            f"{today:.0f} bpm; a baseline needs {RESTING_MIN_BASELINE_DAYS} days in the last "
            f"{RESTING_BASELINE_DAYS} ({len(baseline_days)} so far).",
        )
    baseline = statistics.median(baseline_days)
    above = today - baseline
    score = max(0.0, 100 - max(0.0, above) * RESTING_POINTS_PER_BEAT)
    return Part(
        "resting_heart_rate",
        _round(score),
        f"{today:.0f} bpm vs {RESTING_BASELINE_DAYS}-day median {baseline:.0f} bpm ({above:+.0f}).",
    )


def combine(parts: list[Part]) -> tuple[int | None, list[dict[str, Any]]]:
    """The total and the parts as shown: the weights of parts without data go to the others, pro rata."""
    available = sum(PARTS[p.name].weight for p in parts if p.score is not None)
    if not available:
        return None, []
    shown, total = [], 0.0
    for part in parts:
        weight = PARTS[part.name].weight / available * 100 if part.score is not None else 0.0
        contribution = part.score * weight / 100 if part.score is not None else None
        total += contribution or 0.0
        shown.append(
            {
                "name": part.name,
                "label": PARTS[part.name].label,
                "base_weight": PARTS[part.name].weight,
                "weight": round(weight, 1),
                "score": part.score,
                "contribution": round(contribution, 1) if contribution is not None else None,
                "detail": part.detail,
            }
        )
    return _round(total), shown


# --- Computing and storing a day ------------------------------------------------------------------


def _wake_minutes(night: Reading) -> float:
    end = night.ended_at or night.recorded_at + timedelta(hours=night.value)
    local = end + timedelta(minutes=night.utc_offset_minutes)  # the wall clock where the patient slept
    return local.hour * 60 + local.minute + local.second / 60


def _steps_goal(user: User, steps: MetricType, day: date) -> float | None:
    target = (
        Target.objects.filter(user=user, metric_type=steps, is_active=True, start_date__lte=day)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=day))
        .first()
    )
    if target is None:
        return None
    return {TargetKind.AT_LEAST: target.target_value, TargetKind.RANGE: target.target_min}.get(target.kind)


def day_parts(*, user: User, local_date: date) -> list[Part]:
    """Every part of one local day: the built-in ones in four queries whatever the number of readings,
    then each registered part's own."""
    catalog = get_catalog()
    steps, sleep, resting = (catalog.resolve(code) for code in ("steps", "sleep_duration", "resting_heart_rate"))
    window_start = local_date - timedelta(days=SLEEP_WINDOW_NIGHTS - 1)
    readings = list(
        merged(Reading.objects.filter(user=user, local_date__gte=window_start, local_date__lte=local_date))
        .filter(Q(local_date=local_date) | Q(metric_type=sleep))
        .order_by()
    )
    today = [r for r in readings if r.local_date == local_date]
    nights: dict[date, Reading] = {}  # the longest sleep ending on each day is its night
    for r in readings:
        if r.metric_type_id == sleep.id and (r.local_date not in nights or r.value > nights[r.local_date].value):
            nights[r.local_date] = r
    of_type: dict[int, list[float]] = defaultdict(list)
    for r in today:
        of_type[r.metric_type_id].append(r.value)
    baseline = (
        Reading.objects.filter(
            user=user,
            metric_type=resting,
            local_date__gte=local_date - timedelta(days=RESTING_BASELINE_DAYS),
            local_date__lt=local_date,
        )
        .order_by()
        .values("local_date")
        .annotate(mean=Avg("value"))
        .values_list("mean", flat=True)
    )
    return [
        vitals_part(today, normal_ranges(user=user)),
        activity_part(sum(of_type[steps.id]) if of_type[steps.id] else None, _steps_goal(user, steps, local_date)),
        sleep_part(
            sum(of_type[sleep.id]) if of_type[sleep.id] else None,
            [_wake_minutes(night) for night in nights.values()],
        ),
        resting_heart_rate_part(statistics.fmean(of_type[resting.id]) if of_type[resting.id] else None, list(baseline)),
        *(spec.compute(user=user, local_date=local_date) for spec in PARTS.values() if spec.compute is not None),
    ]


def compute_health_score(*, user: User, local_date: date) -> DailyHealthScore | None:
    """Compute one local day's score from its readings and store it (one row per user and day).

    Idempotent: the result depends only on the readings, targets and rules. A day without data
    in any part has no score, and a row left from earlier data is removed.
    """
    total, parts = combine(day_parts(user=user, local_date=local_date))
    if total is None:
        DailyHealthScore.objects.filter(user=user, local_date=local_date).delete()
        return None
    score, _ = DailyHealthScore.objects.update_or_create(
        user=user, local_date=local_date, defaults={"score": total, "parts": parts}
    )
    return score


def due_health_scores(*, now: datetime) -> list[tuple[Any, date]]:
    """(user id, day) for every user whose local yesterday has no score, or one older than that day's data.

    A score is older than its day's data when it was computed before the day ended (an on-demand
    score of a day then still running) or before the day's rollups last changed (late readings,
    edits, deletions; rollups are rebuilt after every write). A score left on a day that no longer
    has any rollup is due too, so that computing it removes it. Three queries, whatever the number
    of users: rollups are one row per user, type and day, far fewer than readings.
    """
    zones = Profile.objects.order_by().values_list("timezone", flat=True).distinct()
    yesterday = {}
    sweep = Sweep("due_health_scores")  # a zone stored before it was checked skips its people, not everyone
    for name in zones:
        with sweep.item(timezone=name):
            yesterday[name] = now.astimezone(zoneinfo.ZoneInfo(name)).date() - timedelta(days=1)
    if not yesterday:
        return []
    on_yesterday = Q()
    for name, day in yesterday.items():
        on_yesterday |= Q(user__profile__timezone=name, local_date=day)
    changed = {
        (row["user_id"], row["local_date"]): (row["user__profile__timezone"], row["changed_at"])
        for row in DailySummary.objects.filter(on_yesterday)
        .order_by()
        .values("user_id", "local_date", "user__profile__timezone")
        .annotate(changed_at=Max("updated_at"))
    }
    computed = dict(
        ((user_id, day), at)
        for user_id, day, at in DailyHealthScore.objects.filter(on_yesterday).values_list(
            "user_id", "local_date", "computed_at"
        )
    )
    due = [key for key in computed if key not in changed]
    for (user_id, day), (zone, changed_at) in changed.items():
        day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zoneinfo.ZoneInfo(zone))
        at = computed.get((user_id, day))
        if at is None or at < max(changed_at, day_end):
            due.append((user_id, day))
    return sorted(due, key=lambda key: (str(key[0]), key[1]))
