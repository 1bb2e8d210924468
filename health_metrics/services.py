"""Writes for health metrics: data sources, reading edits and deletes, rollups, targets.

New readings come in through the one ingest path, `health_metrics.ingest`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
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

# A lost recompute task leaves its marks until they expire; the nightly reconciliation
# covers those days either way.
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
    """
    pairs = sorted({(type_id, day.isoformat()) for type_id, day in days})
    if not pairs:
        return

    def enqueue() -> None:
        from .tasks import recompute_daily_summaries_task

        fresh = [
            [type_id, day]
            for type_id, day in pairs
            if cache.add(_pending_key(user_id, type_id, day), 1, timeout=ROLLUP_PENDING_TTL)
        ]
        if fresh:
            recompute_daily_summaries_task.apply_async((str(user_id), fresh), countdown=settings.ROLLUP_DELAY_SECONDS)

    transaction.on_commit(enqueue, robust=True)


def clear_pending_rollups(*, user_id: Any, days: Iterable[tuple[int, date]]) -> None:
    cache.delete_many([_pending_key(user_id, type_id, day.isoformat()) for type_id, day in days])


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


def reconcile_daily_summaries(*, since: date) -> int:
    """Recompute every (user, type, day) with readings since `since`: the nightly safety net."""
    keys = (
        Reading.objects.filter(local_date__gte=since)
        .values_list("user_id", "metric_type_id", "local_date")
        .distinct()
        .order_by()
    )
    by_user: dict[Any, set[tuple[int, date]]] = defaultdict(set)
    for user_id, type_id, day in keys:
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
