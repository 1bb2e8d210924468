"""Reads and aggregations: buckets with exact medians, summaries, stats, trends, target progress.

PostgreSQL computes medians in SQL (percentile_cont); elsewhere (SQLite, the zero-setup
default) they are computed from the raw values in Python, with the same results.
"""

from __future__ import annotations

import functools
import statistics
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import Aggregate, Avg, Count, F, FloatField, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncMonth, TruncWeek
from django.utils import timezone

from accounts.models import Profile, User

from .catalog import catalog_rows
from .models import (
    Aggregation,
    DailySummary,
    MetricType,
    Period,
    PeriodSummary,
    Reading,
    SummaryFigures,
    Target,
    TargetKind,
)

# Trend direction: a change of the mean smaller than this, either way, is "stable".
TREND_DEAD_BAND_PERCENT = 2.0


class Median(Aggregate):
    """The exact median (PostgreSQL's continuous percentile at 0.5)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


@functools.cache
def sum_type_ids() -> frozenset[int]:
    """The types whose readings add up over a day (steps, energy, ...), from the catalog file (ids are stable)."""
    return frozenset(row["id"] for row in catalog_rows() if row["aggregation"] == Aggregation.SUM)


def merged(readings: QuerySet) -> QuerySet:
    """The readings as the daily-totals rule counts them: of a sum type, each local day's readings come
    from one source only, the highest-priority one with readings that day (ties: the source made first).

    Other types keep every reading. A correlated subquery per sum-type row, one probe of the
    (user, type, local_date) index; rows of other types never run it.
    """
    winner = (
        Reading.objects.filter(
            user_id=OuterRef("user_id"), metric_type_id=OuterRef("metric_type_id"), local_date=OuterRef("local_date")
        )
        .order_by("-data_source__priority", "data_source__created_at", "data_source_id")
        .values("data_source_id")[:1]
    )
    return readings.filter(~Q(metric_type_id__in=sum_type_ids()) | Q(data_source_id=Subquery(winner)))


def _is_postgres(queryset: QuerySet) -> bool:
    return connections[queryset.db].vendor == "postgresql"


def bucket_stats(readings: QuerySet, bucket: Any) -> list[dict[str, Any]]:
    """count, min, max, mean, median, sum (and the second component's) per bucket, newest first.

    `bucket` is a field name or an expression over the readings (e.g. TruncWeek("local_date")).
    """
    expression = F(bucket) if isinstance(bucket, str) else bucket
    aggregates: dict[str, Any] = {
        "count": Count("*"),
        "min": Min("value"),
        "max": Max("value"),
        "mean": Avg("value"),
        "sum": Sum("value"),
        "secondary_min": Min("secondary_value"),
        "secondary_max": Max("secondary_value"),
        "secondary_mean": Avg("secondary_value"),
    }
    postgres = _is_postgres(readings)
    if postgres:
        aggregates |= {"median": Median("value"), "secondary_median": Median("secondary_value")}
    grouped = readings.order_by().annotate(bucket=expression).values("bucket")
    rows = list(grouped.annotate(**aggregates).order_by("-bucket"))
    if not postgres:
        values: dict[Any, list[float]] = defaultdict(list)
        seconds: dict[Any, list[float]] = defaultdict(list)
        for key, value, second in grouped.values_list("bucket", "value", "secondary_value"):
            values[key].append(value)
            if second is not None:
                seconds[key].append(second)
        for row in rows:
            row["median"] = statistics.median(values[row["bucket"]])
            row["secondary_median"] = statistics.median(seconds[row["bucket"]]) if seconds[row["bucket"]] else None
    for row in rows:
        if isinstance(row["bucket"], datetime):
            row["bucket"] = row["bucket"].date()
    return rows


PERIODS = {"week": TruncWeek("local_date"), "month": TruncMonth("local_date")}


def summary(*, patient, metric_type: MetricType, period: str, start: date, end: date) -> list[dict[str, Any]]:
    """Buckets of the patient's local calendar, newest first, from the rollups.

    Days come from the daily rollups; weeks (Monday first) and months from the period
    rollups, whose medians were computed over the raw values (never a median of medians).
    A week or month that `start` / `end` cut is still shown whole.
    """
    if period == "day":
        rows = DailySummary.objects.filter(
            user=patient, metric_type=metric_type, local_date__gte=start, local_date__lte=end
        ).order_by("-local_date")
        return [{"start": row.local_date, "end": row.local_date, **_stats_of(row)} for row in rows]
    first = start - timedelta(days=start.weekday()) if period == Period.WEEK else start.replace(day=1)
    rows = PeriodSummary.objects.filter(
        user=patient, metric_type=metric_type, period=period, start__gte=first, start__lte=end
    ).order_by("-start")
    return [{"start": row.start, "end": period_end(period, row.start), **_stats_of(row)} for row in rows]


def period_end(period: str, start: date) -> date:
    if period == Period.WEEK:
        return start + timedelta(days=6)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _stats_of(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in SummaryFigures.FIGURES}


def _direction(change_percent: float | None) -> str | None:
    if change_percent is None:
        return None
    if abs(change_percent) < TREND_DEAD_BAND_PERCENT:
        return "stable"
    return "rising" if change_percent > 0 else "falling"


def _change_percent(current: float | None, previous: float | None) -> float | None:
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / abs(previous) * 100


def _slope_per_day(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (day, value) points."""
    if len(points) < 2:
        return None
    xs, ys = zip(*points, strict=True)
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs)
    if denominator == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / denominator


def trends(*, patient, metric_type: MetricType, days: int, now: datetime | None = None) -> dict[str, Any]:
    """The last `days` days against the `days` before: means, change %, slope per day, direction.

    The slope is fitted to the daily means of the current window (by local day), in the
    canonical unit per day; the direction reads the change of the mean with a ±2 % dead band.
    """
    now = now or timezone.now()
    current_start, previous_start = now - timedelta(days=days), now - timedelta(days=2 * days)
    readings = Reading.objects.filter(user=patient, metric_type=metric_type, recorded_at__gt=previous_start)
    if metric_type.id in sum_type_ids():
        readings = merged(readings)
    means = readings.aggregate(
        current_mean=Avg("value", filter=Q(recorded_at__gt=current_start)),
        current_count=Count("id", filter=Q(recorded_at__gt=current_start)),
        previous_mean=Avg("value", filter=Q(recorded_at__lte=current_start)),
        previous_count=Count("id", filter=Q(recorded_at__lte=current_start)),
    )
    daily = (
        readings.filter(recorded_at__gt=current_start)
        .order_by()
        .values("local_date")
        .annotate(mean=Avg("value"))
        .values_list("local_date", "mean")
    )
    origin = (current_start + timedelta(days=0)).date()
    slope = _slope_per_day([((day - origin).days, mean) for day, mean in daily])
    change = _change_percent(means["current_mean"], means["previous_mean"])
    return {
        "metric_type": metric_type.code,
        "unit": metric_type.unit,
        "days": days,
        **means,
        "change_percent": change,
        "slope_per_day": slope,
        "direction": _direction(change),
        "dead_band_percent": TREND_DEAD_BAND_PERCENT,
    }


def stats(*, patient, days: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per metric type over the last `days` days: count, latest, mean, min, max, share in range, direction."""
    now = now or timezone.now()
    since, half = now - timedelta(days=days), now - timedelta(days=days / 2)
    readings = merged(Reading.objects.filter(user=patient, recorded_at__gt=since))
    rows = list(
        readings.order_by()
        .values("metric_type")
        .annotate(
            count=Count("id"),
            mean=Avg("value"),
            min=Min("value"),
            max=Max("value"),
            normal=Count("id", filter=Q(is_abnormal=False)),
            latest_at=Max("recorded_at"),
            recent_mean=Avg("value", filter=Q(recorded_at__gt=half)),
            earlier_mean=Avg("value", filter=Q(recorded_at__lte=half)),
        )
        .order_by("metric_type")
    )
    if not rows:
        return []
    latest_filter = Q()
    for row in rows:
        latest_filter |= Q(metric_type_id=row["metric_type"], recorded_at=row["latest_at"])
    # Ties at the same moment: the last stored wins (the dict keeps the last row per type).
    latest = {r.metric_type_id: r for r in readings.filter(latest_filter).order_by("metric_type_id", "created_at")}
    types = MetricType.objects.in_bulk([row["metric_type"] for row in rows])
    result = []
    for row in rows:
        metric_type, last = types[row["metric_type"]], latest.get(row["metric_type"])
        result.append(
            {
                "metric_type": metric_type.code,
                "unit": metric_type.unit,
                "count": row["count"],
                "latest": {
                    "value": last.value,
                    "secondary_value": last.secondary_value,
                    "display_value": last.display_value,
                    "recorded_at": last.recorded_at,
                }
                if last
                else None,
                "mean": row["mean"],
                "min": row["min"],
                "max": row["max"],
                "share_in_normal_range": row["normal"] / row["count"],
                "direction": _direction(_change_percent(row["recent_mean"], row["earlier_mean"])),
            }
        )
    return result


def targets_progress(targets: list[Target]) -> dict[Any, dict[str, Any]]:
    """Progress of each target, in a constant number of queries.

    The current value is today's total (the owner's local day, from its highest-priority source:
    never a sum across sources) for sum types, else the latest reading.
    """
    if not targets:
        return {}
    user_ids = {t.user_id for t in targets}
    zones = dict(Profile.objects.filter(user_id__in=user_ids).values_list("user_id", "timezone"))
    today = {uid: timezone.localdate(timezone=zoneinfo.ZoneInfo(zones.get(uid) or "UTC")) for uid in user_ids}
    sum_types = [t for t in targets if t.metric_type.aggregation == Aggregation.SUM]
    other = [t for t in targets if t.metric_type.aggregation != Aggregation.SUM]
    totals: dict[tuple, float] = {}
    if sum_types:
        day_filter = Q()
        for t in sum_types:
            day_filter |= Q(user_id=t.user_id, metric_type_id=t.metric_type_id, local_date=today[t.user_id])
        for row in (
            merged(Reading.objects.filter(day_filter))
            .order_by()
            .values("user_id", "metric_type_id")
            .annotate(total=Sum("value"))
        ):
            totals[(row["user_id"], row["metric_type_id"])] = row["total"]
    latest: dict[tuple, tuple[float, datetime]] = {}
    if other:
        pair_filter = Q()
        for t in other:
            pair_filter |= Q(user_id=t.user_id, metric_type_id=t.metric_type_id)
        newest = (
            Reading.objects.filter(pair_filter)
            .order_by()
            .values("user_id", "metric_type_id")
            .annotate(at=Max("recorded_at"))
        )
        newest_filter = Q()
        for row in newest:
            newest_filter |= Q(user_id=row["user_id"], metric_type_id=row["metric_type_id"], recorded_at=row["at"])
        if newest:
            for user_id, type_id, value, at in Reading.objects.filter(newest_filter).values_list(
                "user_id", "metric_type_id", "value", "recorded_at"
            ):
                latest[(user_id, type_id)] = (value, at)
    progress = {}
    for t in targets:
        key = (t.user_id, t.metric_type_id)
        if t.metric_type.aggregation == Aggregation.SUM:
            current, as_of = totals.get(key), today[t.user_id]
        else:
            current, as_of = latest.get(key, (None, None))
        progress[t.pk] = _progress(t, current, as_of)
    return progress


def _progress(target: Target, current: float | None, as_of: Any) -> dict[str, Any]:
    if current is None:
        return {"current": None, "percent": None, "achieved": False, "as_of": as_of}
    if target.kind == TargetKind.AT_LEAST:
        percent = current / target.target_value * 100 if target.target_value else None
        achieved = current >= target.target_value
    elif target.kind == TargetKind.AT_MOST:
        percent = target.target_value / current * 100 if current else 100.0
        achieved = current <= target.target_value
    else:
        achieved = target.target_min <= current <= target.target_max
        percent = 100.0 if achieved else None
    return {"current": current, "percent": percent, "achieved": achieved, "as_of": as_of}


# The vital signs a clinician looks at first, in the order they are shown (catalog codes).
VITAL_SIGNS = (
    "blood_pressure",
    "heart_rate",
    "resting_heart_rate",
    "oxygen_saturation",
    "body_temperature",
    "respiratory_rate",
    "blood_glucose",
    "body_weight",
)


@functools.cache
def vital_sign_type_ids() -> tuple[int, ...]:
    """The VITAL_SIGNS' type ids, read from the catalog file (ids are stable), so no query is spent on them."""
    ids = {row["code"]: row["id"] for row in catalog_rows()}
    return tuple(ids[code] for code in VITAL_SIGNS)


def latest_readings(*, user_ids: Iterable[Any], type_ids: Sequence[int]) -> dict[Any, list[Reading]]:
    """Each user's newest reading of each type, in `type_ids` order; types without a reading are left out.

    Two queries for any number of users. The first finds the newest reading's id per user and type with a
    correlated LIMIT 1 subquery, one probe of the (user, type, -recorded_at) index each, so a user's older
    readings are never read; it runs on PostgreSQL and SQLite alike. The second loads those readings, with
    their metric type. Ties at the same moment: the last stored wins, as in `stats`.
    """
    user_ids = list(user_ids)
    if not user_ids or not type_ids:
        return {}
    newest = {
        f"newest_{type_id}": Subquery(
            Reading.objects.filter(user_id=OuterRef("pk"), metric_type_id=type_id)
            .order_by("-recorded_at", "-created_at")
            .values("pk")[:1]
        )
        for type_id in type_ids
    }
    ids = User.objects.filter(pk__in=user_ids).annotate(**newest).values_list(*newest)
    found = {reading_id for row in ids for reading_id in row if reading_id is not None}
    if not found:
        return {}
    position = {type_id: index for index, type_id in enumerate(type_ids)}
    by_user: dict[Any, list[Reading]] = defaultdict(list)
    readings = Reading.objects.filter(pk__in=found).select_related("metric_type")
    for reading in sorted(readings, key=lambda r: position[r.metric_type_id]):
        by_user[reading.user_id].append(reading)
    return dict(by_user)
