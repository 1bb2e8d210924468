"""Writes for health metrics: data sources, reading edits and deletes, rollups, targets.

New readings come in through the one ingest path, `health_metrics.ingest`.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_timezone
from config.errors import field_error
from config.sweeps import Sweep

from .catalog import get_catalog
from .models import (
    DEFAULT_PRIORITY,
    DailySummary,
    DataSource,
    MetricType,
    Period,
    PeriodSummary,
    Reading,
    SourceKind,
    SummaryFigures,
    Target,
    TargetKind,
)
from .selectors import PERIODS, bucket_stats, merged, period_end, sum_type_ids
from .units import UnknownUnit, conversion
from .validation import ReadingError, parse_reading

logger = logging.getLogger(__name__)

# A recompute task lost after publishing (its worker died) leaves its marks until they
# expire; the nightly reconciliation covers those days either way.
ROLLUP_PENDING_TTL = 300

# --- Data sources ---------------------------------------------------------------------


def create_data_source(*, user: User, kind: str, name: str, priority: int | None = None) -> DataSource:
    """A new origin of readings (a device, a connection, an import), at its kind's default priority."""
    return DataSource.objects.create(
        user=user, kind=kind, name=name, priority=DEFAULT_PRIORITY[kind] if priority is None else priority
    )


def app_data_source(*, user: User, kind: str = SourceKind.MANUAL) -> DataSource:
    """The user's own source of this kind for readings the app sends (their manual entries, ...), made once."""
    source = DataSource.objects.filter(user=user, kind=kind, is_app_default=True).first()
    if source is not None:
        return source
    try:
        with transaction.atomic():
            return DataSource.objects.create(
                user=user, kind=kind, is_app_default=True, name=SourceKind(kind).label, priority=DEFAULT_PRIORITY[kind]
            )
    except IntegrityError:  # made concurrently
        return DataSource.objects.get(user=user, kind=kind, is_app_default=True)


@transaction.atomic
def update_data_source(*, data_source: DataSource, name: str | None = None, priority: int | None = None) -> DataSource:
    """Rename a source or change its priority; a new priority re-decides its days' totals (rollups on commit)."""
    old_priority = data_source.priority
    if name is not None:
        data_source.name = name
    if priority is not None:
        data_source.priority = priority
    data_source.save()
    if data_source.priority != old_priority:
        days = (
            Reading.objects.filter(data_source=data_source, metric_type_id__in=sum_type_ids())
            .values_list("metric_type_id", "local_date")
            .distinct()
            .order_by()
        )
        enqueue_rollups(user_id=data_source.user_id, days=set(days))
    return data_source


def _in_own_offset(moment: datetime, minutes: int) -> datetime:
    return moment.astimezone(dt_timezone(timedelta(minutes=minutes)))


@transaction.atomic
def update_reading(*, reading: Reading, data: Mapping[str, Any]) -> Reading:
    """Change a reading's values, unit, times or notes; the same rules as a new one apply."""
    merged: dict[str, Any] = {
        "value": reading.original_value,
        "secondary_value": reading.original_secondary_value,
        "unit": reading.original_unit,
        "recorded_at": _in_own_offset(reading.recorded_at, reading.utc_offset_minutes),
        "ended_at": _in_own_offset(reading.ended_at, reading.utc_offset_minutes) if reading.ended_at else None,
        "notes": reading.notes,
        "client_id": reading.client_id,
        "external_id": reading.external_id,
    }
    if reading.metric_type.is_pair:
        merged["systolic"], merged["diastolic"] = merged.pop("value"), merged.pop("secondary_value")
        for alias, name in (("systolic_value", "systolic"), ("diastolic_value", "diastolic"), ("value", "systolic")):
            if alias in data and name not in data:
                merged[name] = data[alias]
    merged.update({k: v for k, v in data.items() if k in merged})
    try:
        valid = parse_reading(
            merged,
            catalog=get_catalog(),
            tz=user_timezone(reading.user),
            now=timezone.now(),
            metric_type=reading.metric_type,
        )
    except ReadingError as exc:
        raise ValidationError({exc.attr: ValidationError(exc.detail, code=exc.code)}) from None
    old_day = reading.local_date
    for name, value in valid.model_fields().items():
        setattr(reading, name, value)
    try:
        with transaction.atomic():
            reading.save()
    except IntegrityError:
        raise field_error(
            "recorded_at",
            "This source already has a reading of this type at that time (or, for a daily total, that day).",
            code="unique",
        ) from None
    enqueue_rollups(
        user_id=reading.user_id, days={(reading.metric_type_id, old_day), (reading.metric_type_id, reading.local_date)}
    )
    return reading


@transaction.atomic
def delete_reading(*, reading: Reading) -> None:
    day = (reading.metric_type_id, reading.local_date)
    user_id = reading.user_id
    reading.delete()
    enqueue_rollups(user_id=user_id, days={day})


# --- Daily rollups --------------------------------------------------------------------


def _pending_key(user_id: Any, type_id: int, day: str) -> str:
    return f"rollup-pending:{user_id}:{type_id}:{day}"


def enqueue_rollups(*, user_id: Any, days: Iterable[tuple[int, date]]) -> None:
    """Recompute the touched days' rollups shortly after the write has committed.

    Coalesced: a (user, type, day) already waiting for its recompute is not queued again,
    so a device posting every minute costs one recompute per ROLLUP_DELAY_SECONDS, not one
    per batch. The task clears the marks before it reads, so nothing written is missed.
    A mark stands only for a published task: when publishing fails (the broker is down) the
    marks are taken back, so the next write to those days publishes anew, and the nightly
    reconciliation covers a day written only during the outage. With the cache down nothing
    is coalesced: every write publishes its own recompute.
    """
    pairs = sorted({(type_id, day.isoformat()) for type_id, day in days})
    if not pairs:
        return

    def enqueue() -> None:
        from .tasks import recompute_daily_summaries_task

        keys = {pair: _pending_key(user_id, *pair) for pair in pairs}
        try:
            fresh = [pair for pair in pairs if cache.add(keys[pair], 1, timeout=ROLLUP_PENDING_TTL)]
        except Exception:  # the cache is unreachable (each backend raises its own): recompute, uncoalesced
            logger.warning("Rollup marks unavailable (cache down); recomputing without coalescing", exc_info=True)
            fresh, marked = list(pairs), []
        else:
            marked = fresh
        if not fresh:
            return
        try:
            recompute_daily_summaries_task.apply_async(
                (str(user_id), [list(pair) for pair in fresh]), countdown=settings.ROLLUP_DELAY_SECONDS
            )
        except Exception:
            logger.exception("Could not publish the rollup of %d day(s) for user %s", len(fresh), user_id)
            with contextlib.suppress(Exception):  # best effort: an unreachable cache holds no marks to take back
                cache.delete_many([keys[pair] for pair in marked])

    transaction.on_commit(enqueue, robust=True)


def clear_pending_rollups(*, user_id: Any, days: Iterable[tuple[int, date]]) -> None:
    """Let later writes to these days queue anew. Best effort: with the cache down the recompute goes on
    (writes do not coalesce meanwhile); a mark the cache keeps through a brief outage expires after
    ROLLUP_PENDING_TTL, and the nightly reconciliation covers a write it held back."""
    try:
        cache.delete_many([_pending_key(user_id, type_id, day.isoformat()) for type_id, day in days])
    except Exception:  # the cache is unreachable (each backend raises its own)
        logger.warning("Rollup marks not cleared (cache down) for user %s", user_id, exc_info=True)


def recompute_daily_summaries(*, user_id: Any, days: Iterable[tuple[int, date]]) -> int:
    """Rebuild the rollups of the given (type, local day) pairs, and of their weeks and months, from raw readings.

    Sum types are merged, never summed across sources: a day's figures come from the readings of
    its highest-priority source (ties: the source made first), and weeks and months from those
    merged days. `reading_count` keeps every source's readings of the day (the list's count).
    Idempotent: the result depends only on the readings and the sources' priorities. Days (and
    periods) left without readings lose their rollup. Returns how many daily rollups now exist.
    """
    by_type: dict[int, set[date]] = defaultdict(set)
    for type_id, day in days:
        by_type[type_id].add(day)
    written = 0
    for type_id, dates in by_type.items():
        every = Reading.objects.filter(user_id=user_id, metric_type_id=type_id)
        is_total = type_id in sum_type_ids()
        readings = merged(every) if is_total else every  # totals: each day from its highest-priority source
        rows = bucket_stats(readings.filter(local_date__in=dates), "local_date")
        if is_total:
            counts = dict(
                every.filter(local_date__in=dates)
                .order_by()
                .values("local_date")
                .annotate(n=Count("*"))
                .values_list("local_date", "n")
            )
        else:
            counts = {row["bucket"]: row["count"] for row in rows}
        with transaction.atomic():
            DailySummary.objects.bulk_create(
                [
                    DailySummary(
                        user_id=user_id,
                        metric_type_id=type_id,
                        local_date=row["bucket"],
                        reading_count=counts[row["bucket"]],
                        **_summary_fields(row),
                    )
                    for row in rows
                ],
                update_conflicts=True,
                unique_fields=["user", "metric_type", "local_date"],
                update_fields=[*SummaryFigures.FIGURES, "reading_count", "updated_at"],
            )
            DailySummary.objects.filter(user_id=user_id, metric_type_id=type_id, local_date__in=dates).exclude(
                local_date__in=[row["bucket"] for row in rows]
            ).delete()
            for period, starts in period_starts(dates).items():
                _recompute_periods(readings, user_id=user_id, type_id=type_id, period=period, starts=starts)
        written += len(rows)
    return written


def period_starts(dates: Iterable[date]) -> dict[str, set[date]]:
    """The weeks (their Mondays) and months (their firsts) that contain the dates."""
    return {
        Period.WEEK: {day - timedelta(days=day.weekday()) for day in dates},
        Period.MONTH: {day.replace(day=1) for day in dates},
    }


def _recompute_periods(readings: QuerySet, *, user_id: Any, type_id: int, period: str, starts: set[date]) -> None:
    within = Q()
    for start in starts:
        within |= Q(local_date__gte=start, local_date__lte=period_end(period, start))
    rows = bucket_stats(readings.filter(within), PERIODS[period])
    PeriodSummary.objects.bulk_create(
        [
            PeriodSummary(
                user_id=user_id, metric_type_id=type_id, period=period, start=row["bucket"], **_summary_fields(row)
            )
            for row in rows
        ],
        update_conflicts=True,
        unique_fields=["user", "metric_type", "period", "start"],
        update_fields=[*SummaryFigures.FIGURES, "updated_at"],
    )
    PeriodSummary.objects.filter(user_id=user_id, metric_type_id=type_id, period=period, start__in=starts).exclude(
        start__in=[row["bucket"] for row in rows]
    ).delete()


def _summary_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in SummaryFigures.FIGURES} | {"updated_at": timezone.now()}


def stale_daily_summaries() -> list[tuple[Any, int, date]]:
    """Every (user, type, local day) whose rollup is missing, older than its newest reading, counts
    another number of readings (one was deleted, or written by a transaction the recompute did not
    see), or has no readings left.

    One statement over the whole readings table: a sequential scan grouped by (user, type, day) and
    joined to the rollups, then the rollups with no reading left (an anti-join on the
    (user, type, day) index). Its cost grows with the table, not with what changed: 1.0-1.4 s for
    1,000,000 readings on 2 cores (measured 2026-12-02, nothing stale), so it runs nightly; what is
    written in between is rolled up within ROLLUP_DELAY_SECONDS by the write's own task.
    """
    reading, summary = Reading._meta.db_table, DailySummary._meta.db_table
    sql = f"""
        SELECT r.user_id, r.metric_type_id, r.local_date
          FROM {reading} r
          LEFT JOIN {summary} s
            ON s.user_id = r.user_id AND s.metric_type_id = r.metric_type_id AND s.local_date = r.local_date
         GROUP BY r.user_id, r.metric_type_id, r.local_date, s.id, s.updated_at, s.reading_count
        HAVING s.id IS NULL OR MAX(r.updated_at) > s.updated_at OR COUNT(*) <> s.reading_count
        UNION ALL
        SELECT s.user_id, s.metric_type_id, s.local_date
          FROM {summary} s
         WHERE NOT EXISTS (
                SELECT 1 FROM {reading} r
                 WHERE r.user_id = s.user_id AND r.metric_type_id = s.metric_type_id AND r.local_date = s.local_date)
    """  # the table names come from the models, nothing from input
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    user_field, day_field = Reading._meta.get_field("user").target_field, Reading._meta.get_field("local_date")
    return [(user_field.to_python(user_id), type_id, day_field.to_python(day)) for user_id, type_id, day in rows]


def reconcile_daily_summaries() -> int:
    """Recompute every stale rollup (`stale_daily_summaries`): the nightly safety net for recomputes
    that never ran (the broker was down, a worker died). Returns how many daily rollups were rebuilt."""
    by_user: dict[Any, set[tuple[int, date]]] = defaultdict(set)
    for user_id, type_id, day in stale_daily_summaries():
        by_user[user_id].add((type_id, day))
    written = 0
    sweep = Sweep("reconcile_daily_summaries")  # one patient's failure is logged; the others are still rebuilt
    for user_id, days in by_user.items():
        with sweep.item(user=user_id):
            written += recompute_daily_summaries(user_id=user_id, days=days)
    return written


# --- Targets ---------------------------------------------------------------------------


def _canonical(metric_type: MetricType, value: float | None, unit: str | None, attr: str) -> float | None:
    if value is None:
        return None
    try:
        scale, offset = conversion(metric_type, unit)
    except UnknownUnit:
        choices = ", ".join([metric_type.unit, *metric_type.accepted_units])
        raise field_error("unit", f"Valid units: {choices}.", code="invalid_choice") from None
    return value * scale + offset


@transaction.atomic
def set_target(*, user: User, target: Target | None = None, **fields: Any) -> Target:
    """Create or change a target; there is one active target per metric type (400 on a second)."""
    target = target or Target(user=user)
    unit = fields.pop("unit", None)
    label = fields.pop("metric_type", None)
    if label is not None:
        metric_type = get_catalog().resolve(label)
        if metric_type is None:
            raise field_error(
                "metric_type",
                f"Unknown metric type {label!r}. Valid types: {', '.join(get_catalog().codes)}.",
                code="invalid_choice",
            )
        target.metric_type = metric_type
    for name in ("target_value", "target_min", "target_max"):
        if name in fields:
            fields[name] = _canonical(target.metric_type, fields[name], unit, name)
    for name, value in fields.items():
        setattr(target, name, value)
    target.start_date = target.start_date or timezone.localdate(timezone=user_timezone(user))
    _check_target(target)
    try:
        with transaction.atomic():
            target.save()
    except IntegrityError:
        raise field_error(
            "metric_type",
            f"There is already an active {target.metric_type.code} target; end it or change it instead.",
            code="already_active",
        ) from None
    return target


def _check_target(target: Target) -> None:
    if target.kind == TargetKind.RANGE:
        if target.target_min is None or target.target_max is None:
            raise field_error("target_min", "A range needs target_min and target_max.", code="required")
        if target.target_min >= target.target_max:
            raise field_error("target_max", "Must be above target_min.", code="invalid")
    elif target.target_value is None:
        raise field_error("target_value", "This field is required.", code="required")
    if target.end_date is not None and target.end_date < target.start_date:
        raise field_error("end_date", "Must not be before start_date.", code="invalid")
