"""Writes for health metrics: recording readings (one, bulk, edits, deletes), rollups, targets."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_timezone
from config.errors import field_error

from .catalog import get_catalog
from .models import (
    DailySummary,
    MetricType,
    Period,
    PeriodSummary,
    Reading,
    Source,
    SummaryFigures,
    Target,
    TargetKind,
)
from .selectors import PERIODS, bucket_stats, period_end
from .units import UnknownUnit, conversion
from .validation import ReadingError, ValidReading, parse_reading

# A lost recompute task leaves its marks until they expire; the nightly reconciliation
# covers those days either way.
ROLLUP_PENDING_TTL = 300

# --- Recording readings -------------------------------------------------------------


@dataclass(slots=True)
class ItemResult:
    """What happened to one reading of a batch."""

    index: int
    status: str  # created | replaced | duplicate | superseded | error
    id: uuid.UUID | None = None
    error: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "status": self.status, "id": self.id, "error": self.error}


@dataclass
class RecordOutcome:
    results: list[ItemResult]
    readings: dict[int, Reading] = field(default_factory=dict)  # by index, for created / replaced

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


_REPLACED_FIELDS = [
    "value",
    "secondary_value",
    "original_value",
    "original_secondary_value",
    "original_unit",
    "recorded_at",
    "utc_offset_minutes",
    "client_id",
    "external_id",
    "notes",
    "is_abnormal",
    "updated_at",
]


@transaction.atomic
def record_readings(
    *,
    user: User,
    items: Sequence[Mapping[str, Any]],
    default_source: str = Source.MANUAL,
    now: datetime | None = None,
    device: Any = None,
) -> RecordOutcome:
    """Validate and store readings; valid ones are stored even when others fail.

    Idempotent: a `client_id` already stored (or repeated in the batch) is a `duplicate` and
    stores nothing. For sum types, a point reading is its source's running total for the
    local day: a later one replaces the stored one (`replaced`), an older one changes
    nothing (`superseded`). From a `device`, one reading per (type, recorded_at): a repeat
    is a `duplicate`. Daily rollups of the touched days are recomputed after commit.
    """
    now = now or timezone.now()
    valid, results = parse_readings(user=user, items=items, default_source=default_source, now=now)
    return store_readings(user=user, valid=valid, results=results, now=now, device=device)


def parse_readings(
    *, user: User, items: Sequence[Mapping[str, Any]], default_source: str, now: datetime
) -> tuple[list[tuple[int, ValidReading]], list[ItemResult | None]]:
    """Run every item through the one validation path; answer the valid ones and the errors by index."""
    catalog, tz = get_catalog(), user_timezone(user)
    results: list[ItemResult | None] = [None] * len(items)
    valid: list[tuple[int, ValidReading]] = []
    for index, item in enumerate(items):
        try:
            valid.append((index, parse_reading(item, catalog=catalog, tz=tz, now=now, default_source=default_source)))
        except ReadingError as exc:
            results[index] = ItemResult(
                index, "error", error={"attr": exc.attr, "code": exc.code, "detail": exc.detail}
            )
    return valid, results


def store_readings(
    *,
    user: User,
    valid: list[tuple[int, ValidReading]],
    results: list[ItemResult | None],
    now: datetime,
    device: Any = None,
) -> RecordOutcome:
    """Store validated readings with per-item results (see record_readings)."""
    client_ids = [v.client_id for _, v in valid if v.client_id is not None]
    known_ids = (
        dict(Reading.objects.filter(user=user, client_id__in=client_ids).values_list("client_id", "id"))
        if client_ids
        else {}
    )
    total_keys = {v.daily_total_key for _, v in valid if v.daily_total_key}
    totals: dict[tuple[int, str], Reading] = {
        (r.metric_type_id, r.daily_total_key): r
        for r in (Reading.objects.filter(user=user, daily_total_key__in=total_keys) if total_keys else [])
    }

    device_seen: dict[tuple[int, datetime], uuid.UUID] = {}
    if device is not None and valid:
        moments = [v.recorded_at for _, v in valid]
        stored = Reading.objects.filter(device=device, recorded_at__gte=min(moments), recorded_at__lte=max(moments))
        device_seen = {(t, at): pk for t, at, pk in stored.values_list("metric_type_id", "recorded_at", "id")}

    outcome = RecordOutcome(results=[])
    to_create: dict[uuid.UUID, Reading] = {}
    to_update: dict[uuid.UUID, Reading] = {}
    touched: set[tuple[int, date]] = set()
    for index, reading_in in valid:
        if reading_in.client_id is not None and reading_in.client_id in known_ids:
            results[index] = ItemResult(index, "duplicate", id=known_ids[reading_in.client_id])
            continue
        device_key = (reading_in.metric_type.id, reading_in.recorded_at)
        if device is not None and device_key in device_seen:
            results[index] = ItemResult(index, "duplicate", id=device_seen[device_key])
            continue
        key = reading_in.daily_total_key
        current = totals.get((reading_in.metric_type.id, key)) if key else None
        if current is not None:
            if current.recorded_at > reading_in.recorded_at:
                results[index] = ItemResult(index, "superseded", id=current.id)
                continue
            for name in _REPLACED_FIELDS[:-1]:
                setattr(current, name, getattr(reading_in, name))
            current.updated_at = now
            (to_create if current.id in to_create else to_update)[current.id] = current
            reading, status = current, "replaced"
        else:
            reading = Reading(id=uuid.uuid4(), user=user, device=device, **reading_in.model_fields())
            to_create[reading.id] = reading
            if key:
                totals[(reading_in.metric_type.id, key)] = reading
            status = "created"
        if reading_in.client_id is not None:
            known_ids[reading_in.client_id] = reading.id
        if device is not None:
            device_seen[device_key] = reading.id
        results[index] = ItemResult(index, status, id=reading.id)
        outcome.readings[index] = reading
        touched.add((reading.metric_type_id, reading.local_date))

    try:
        with transaction.atomic():
            Reading.objects.bulk_create(to_create.values(), batch_size=1000)
    except IntegrityError:
        # A concurrent request stored one of these client ids first: go one by one.
        for reading in to_create.values():
            try:
                with transaction.atomic():
                    reading.save(force_insert=True)
            except IntegrityError:
                if reading.client_id is not None:
                    same = Q(client_id=reading.client_id)
                elif reading.daily_total_key is not None:
                    same = Q(metric_type_id=reading.metric_type_id, daily_total_key=reading.daily_total_key)
                else:
                    same = Q(
                        device=reading.device, metric_type_id=reading.metric_type_id, recorded_at=reading.recorded_at
                    )
                existing = Reading.objects.filter(same, user=user).values_list("id", flat=True)
                for result in results:
                    if result is not None and result.id == reading.id:
                        result.status, result.id = "duplicate", existing.first()
    if to_update:
        Reading.objects.bulk_update(to_update.values(), _REPLACED_FIELDS)
    enqueue_rollups(user=user, days=touched)
    outcome.results = [r for r in results if r is not None]
    return outcome


# What the readings COPY writes, in order, with each column's PostgreSQL type: COPY runs in the binary
# format, which spares formatting every value as text (bench/ingest.py uses the columns too).
COPY_COLUMN_TYPES = (
    ("id", "uuid"),
    ("user_id", "uuid"),
    ("metric_type_id", "int2"),
    ("value", "float8"),
    ("secondary_value", "float8"),
    ("original_value", "float8"),
    ("original_secondary_value", "float8"),
    ("original_unit", "varchar"),
    ("recorded_at", "timestamptz"),
    ("utc_offset_minutes", "int2"),
    ("ended_at", "timestamptz"),
    ("local_date", "date"),
    ("source", "varchar"),
    ("device_id", "uuid"),
    ("client_id", "uuid"),
    ("external_id", "varchar"),
    ("daily_total_key", "varchar"),
    ("is_abnormal", "bool"),
    ("notes", "text"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
COPY_COLUMNS = tuple(name for name, _ in COPY_COLUMN_TYPES)
_COPY_TYPES = [pg_type for _, pg_type in COPY_COLUMN_TYPES]


def copy_row(v: ValidReading, *, user_id: Any, device_id: Any, now: datetime) -> tuple:
    """A validated reading as the COPY writes it, in COPY_COLUMNS order (plain readings: no daily total key)."""
    return (
        uuid.uuid4(),
        user_id,
        v.metric_type.id,
        v.value,
        v.secondary_value,
        v.original_value,
        v.original_secondary_value,
        v.original_unit,
        v.recorded_at,
        v.utc_offset_minutes,
        v.ended_at,
        v.local_date,
        v.source,
        device_id,
        v.client_id,
        v.external_id,
        None,
        v.is_abnormal,
        v.notes,
        now,
        now,
    )


def insert_readings_skipping_duplicates(*, user: User, valid: list[ValidReading], device: Any = None) -> int:
    """Bulk-insert readings that have no replace semantics, skipping any that already exist.

    On PostgreSQL: COPY straight into the table inside a savepoint; if any row is already
    stored (a unique violation), roll that back, COPY into a temporary staging table and
    INSERT … ON CONFLICT DO NOTHING, which skips repeats against stored rows and within
    the batch alike (device, type and time; client id). Elsewhere: bulk_create with ignore_conflicts. Answers how
    many were stored; rollups of the touched days are enqueued on commit.
    """
    if not valid:
        return 0
    if connection.vendor != "postgresql":
        before = Reading.objects.filter(user=user).count()
        now = timezone.now()
        Reading.objects.bulk_create(
            (
                Reading(id=uuid.uuid4(), user=user, device=device, created_at=now, updated_at=now, **v.model_fields())
                for v in valid
            ),
            batch_size=1000,
            ignore_conflicts=True,
        )
        enqueue_rollups(user=user, days={(v.metric_type.id, v.local_date) for v in valid})
        return Reading.objects.filter(user=user).count() - before
    now = timezone.now()
    columns = ", ".join(COPY_COLUMNS)
    device_id = device.pk if device is not None else None
    rows = [copy_row(v, user_id=user.pk, device_id=device_id, now=now) for v in valid]
    with connection.cursor() as cursor:
        # First delivery, nothing stored yet (the usual case): COPY straight into the table.
        savepoint = transaction.savepoint()
        try:
            with cursor.cursor.copy(f"COPY health_metrics_reading ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
        except psycopg.errors.UniqueViolation:
            transaction.savepoint_rollback(savepoint)
        else:
            transaction.savepoint_commit(savepoint)
            enqueue_rollups(user=user, days={(v.metric_type.id, v.local_date) for v in valid})
            return len(rows)
        # Some are stored already (a re-run, an overlap): stage them and skip the conflicts.
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS reading_stage "
            "(LIKE health_metrics_reading INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.cursor.copy(f"COPY reading_stage ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO health_metrics_reading ({columns}) SELECT {columns} FROM reading_stage "
            "ON CONFLICT DO NOTHING RETURNING metric_type_id, local_date"
        )
        stored = cursor.fetchall()
        cursor.execute("TRUNCATE reading_stage")
    enqueue_rollups(user=user, days=set(stored))
    return len(stored)


def record_reading(*, user: User, data: Mapping[str, Any], source: str = Source.MANUAL) -> tuple[Reading, bool]:
    """One reading; returns it and whether anything was stored (a retried client_id stores nothing)."""
    outcome = record_readings(user=user, items=[data], default_source=source)
    result = outcome.results[0]
    if result.status == "error":
        raise ValidationError(
            {result.error["attr"]: ValidationError(result.error["detail"], code=result.error["code"])}
        )
    reading = outcome.readings.get(0) or Reading.objects.get(pk=result.id)
    return reading, result.status in ("created", "replaced")


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
        "source": reading.source,
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
            "recorded_at", "Another daily total from this source exists for that day.", code="unique"
        ) from None
    enqueue_rollups(
        user=reading.user, days={(reading.metric_type_id, old_day), (reading.metric_type_id, reading.local_date)}
    )
    return reading


@transaction.atomic
def delete_reading(*, reading: Reading) -> None:
    day = (reading.metric_type_id, reading.local_date)
    user = reading.user
    reading.delete()
    enqueue_rollups(user=user, days={day})


# --- Daily rollups --------------------------------------------------------------------


def _pending_key(user_id: Any, type_id: int, day: str) -> str:
    return f"rollup-pending:{user_id}:{type_id}:{day}"


def enqueue_rollups(*, user: User, days: Iterable[tuple[int, date]]) -> None:
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
            if cache.add(_pending_key(user.pk, type_id, day), 1, timeout=ROLLUP_PENDING_TTL)
        ]
        if fresh:
            recompute_daily_summaries_task.apply_async((str(user.pk), fresh), countdown=settings.ROLLUP_DELAY_SECONDS)

    transaction.on_commit(enqueue, robust=True)


def clear_pending_rollups(*, user_id: Any, days: Iterable[tuple[int, date]]) -> None:
    cache.delete_many([_pending_key(user_id, type_id, day.isoformat()) for type_id, day in days])


def recompute_daily_summaries(*, user_id: Any, days: Iterable[tuple[int, date]]) -> int:
    """Rebuild the rollups of the given (type, local day) pairs, and of their weeks and months, from raw readings.

    Idempotent: the result depends only on the readings. Days (and periods) left without
    readings lose their rollup. Returns how many daily rollups now exist for those days.
    """
    by_type: dict[int, set[date]] = defaultdict(set)
    for type_id, day in days:
        by_type[type_id].add(day)
    written = 0
    for type_id, dates in by_type.items():
        readings = Reading.objects.filter(user_id=user_id, metric_type_id=type_id)
        rows = bucket_stats(readings.filter(local_date__in=dates), "local_date")
        with transaction.atomic():
            DailySummary.objects.bulk_create(
                [
                    DailySummary(
                        user_id=user_id, metric_type_id=type_id, local_date=row["bucket"], **_summary_fields(row)
                    )
                    for row in rows
                ],
                update_conflicts=True,
                unique_fields=["user", "metric_type", "local_date"],
                update_fields=[*SummaryFigures.FIGURES, "updated_at"],
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
    return sum(recompute_daily_summaries(user_id=user_id, days=days) for user_id, days in by_user.items())


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
