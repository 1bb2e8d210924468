"""The one ingest path: every new reading, from every way in, is validated, converted and stored here.

`ingest_readings(data_source=..., items=...)` takes the origin of the readings (the user's manual
entries, a device, a wearable connection, an import) and the readings as the client sent them, and
answers what happened to each one. The app's single POST and bulk-create (`record_reading`,
`record_readings`), device batches and, later, integrations all call it.

Two ways to store, decided per reading, never per caller:
- a sum type's point reading is its source's running total for the local day: a later one replaces
  the stored one (`replaced`), an older one changes nothing (`superseded`); these go one by one;
- everything else is inserted in bulk (measured hot path: a device batch of 10,000 readings): binary
  COPY straight into the table, and only when some rows are already stored (a retry, an overlap),
  COPY into a staging table and INSERT ... ON CONFLICT DO NOTHING. Repeats (the same source, type
  and moment; the same source and external id; the same client id) are `duplicate`s with the stored
  reading's id.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any

import psycopg
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import User
from accounts.selectors import user_timezone

from .catalog import get_catalog
from .models import DataSource, Reading, SourceKind
from .services import app_data_source, enqueue_rollups
from .validation import ReadingError, ValidReading, is_source_kind, parse_reading


@dataclass(slots=True)
class ItemResult:
    """What happened to one reading of a batch."""

    index: int
    status: str  # created | replaced | duplicate | superseded | error
    id: uuid.UUID | None = None
    error: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "status": self.status, "id": self.id, "error": self.error}


class IngestOutcome:
    """What happened to each item, by index.

    Measured hot path: a reading inserted in bulk is kept as its bare id (no result object per
    reading of a 10,000-reading batch); `results` builds the objects when someone asks for them.
    """

    def __init__(self, entries: list[ItemResult | uuid.UUID], readings: dict[int, Reading] | None = None) -> None:
        self._entries = entries
        # By index, the readings stored one by one (daily totals); bulk-inserted ones are known by id only.
        self.readings: dict[int, Reading] = readings if readings is not None else {}

    @cached_property
    def results(self) -> list[ItemResult]:
        return [
            entry if isinstance(entry, ItemResult) else ItemResult(index, "created", id=entry)
            for index, entry in enumerate(self._entries)
        ]

    @cached_property
    def _counts(self) -> Counter:
        return Counter(entry.status if isinstance(entry, ItemResult) else "created" for entry in self._entries)

    def count(self, status: str) -> int:
        return self._counts[status]

    @property
    def errors(self) -> list[ItemResult]:
        return [entry for entry in self._entries if isinstance(entry, ItemResult) and entry.status == "error"]


def validate_items(
    *, items: Sequence[Any], tz: Any, now: datetime, default_source: str = SourceKind.MANUAL, text_checked: bool = False
) -> tuple[list[tuple[int, ValidReading]], list[ItemResult | None]]:
    """Run every item through the one validation path; answer the valid ones and the errors by index."""
    catalog = get_catalog()
    results: list[ItemResult | None] = [None] * len(items)
    valid: list[tuple[int, ValidReading]] = []
    for index, item in enumerate(items):
        try:
            reading = parse_reading(
                item, catalog=catalog, tz=tz, now=now, default_source=default_source, text_checked=text_checked
            )
            valid.append((index, reading))
        except ReadingError as exc:
            results[index] = ItemResult(
                index, "error", error={"attr": exc.attr, "code": exc.code, "detail": exc.detail}
            )
    return valid, results


@transaction.atomic
def ingest_readings(
    *, data_source: DataSource, items: Sequence[Any], now: datetime | None = None, text_checked: bool = False
) -> IngestOutcome:
    """Validate and store readings from one data source; valid ones are stored even when others fail.

    Idempotent: whatever was stored already is a `duplicate` (or, for daily totals, `superseded` or
    `replaced` by a later total) and nothing is stored twice. Daily rollups of the touched days are
    recomputed after commit. `text_checked`: the caller has checked that no text in the items holds U+0000
    or a lone surrogate (a device batch: its canonical JSON has neither), which spares a check per item on
    a measured hot path (about 200 ms of a 10,000-reading batch on this machine).
    """
    now = now or timezone.now()
    valid, results = validate_items(
        items=items,
        tz=user_timezone(data_source.user_id),
        now=now,
        default_source=data_source.kind,
        text_checked=text_checked,
    )
    outcome = IngestOutcome(results)  # type: ignore[arg-type]  # every index is filled below
    touched: set[tuple[int, date]] = set()
    totals = [(index, v) for index, v in valid if v.is_daily_total]
    if totals:
        _store_one_by_one(data_source, totals, results, outcome, now, touched)
    plain = [(index, v) for index, v in valid if not v.is_daily_total]
    if plain:
        _insert_in_bulk(data_source, plain, results, now, touched)
    enqueue_rollups(user_id=data_source.user_id, days=touched)
    return outcome


# --- Daily totals, one by one ----------------------------------------------------------------

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


def _store_one_by_one(
    source: DataSource,
    valid: list[tuple[int, ValidReading]],
    results: list[ItemResult | None],
    outcome: IngestOutcome,
    now: datetime,
    touched: set[tuple[int, date]],
) -> None:
    """Running daily totals: one per (source, type, local day); the latest recorded_at wins."""
    client_ids = [v.client_id for _, v in valid if v.client_id is not None]
    known_ids = (
        dict(Reading.objects.filter(user_id=source.user_id, client_id__in=client_ids).values_list("client_id", "id"))
        if client_ids
        else {}
    )
    stored = Reading.objects.filter(
        data_source=source,
        is_daily_total=True,
        metric_type_id__in={v.metric_type.id for _, v in valid},
        local_date__in={v.local_date for _, v in valid},
    )
    totals: dict[tuple[int, date], Reading] = {(r.metric_type_id, r.local_date): r for r in stored}
    to_create: dict[uuid.UUID, Reading] = {}
    to_update: dict[uuid.UUID, Reading] = {}
    for index, reading_in in valid:
        if reading_in.client_id is not None and reading_in.client_id in known_ids:
            results[index] = ItemResult(index, "duplicate", id=known_ids[reading_in.client_id])
            continue
        key = (reading_in.metric_type.id, reading_in.local_date)
        current = totals.get(key)
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
            reading = Reading(id=uuid.uuid4(), user_id=source.user_id, data_source=source, **reading_in.model_fields())
            to_create[reading.id] = reading
            totals[key] = reading
            status = "created"
        if reading_in.client_id is not None:
            known_ids[reading_in.client_id] = reading.id
        results[index] = ItemResult(index, status, id=reading.id)
        outcome.readings[index] = reading
        touched.add(key)

    try:
        with transaction.atomic():
            Reading.objects.bulk_create(to_create.values(), batch_size=1000)
    except IntegrityError:
        # A concurrent request stored one of these first (its client id, its day's total): one by one.
        for reading in to_create.values():
            try:
                with transaction.atomic():
                    reading.save(force_insert=True)
            except IntegrityError:
                existing = None
                if reading.client_id is not None:
                    existing = Reading.objects.filter(user_id=source.user_id, client_id=reading.client_id)
                    existing = existing.values_list("id", flat=True).first()
                if existing is None:
                    existing = (
                        Reading.objects.filter(
                            data_source=source,
                            metric_type_id=reading.metric_type_id,
                            local_date=reading.local_date,
                            is_daily_total=True,
                        )
                        .values_list("id", flat=True)
                        .first()
                    )
                for result in results:
                    if isinstance(result, ItemResult) and result.id == reading.id:
                        result.status, result.id = "duplicate", existing
                        outcome.readings.pop(result.index, None)
    if to_update:
        Reading.objects.bulk_update(to_update.values(), _REPLACED_FIELDS)


# --- Everything else, in bulk ------------------------------------------------------------------

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
    ("data_source_id", "uuid"),
    ("client_id", "uuid"),
    ("external_id", "varchar"),
    ("is_daily_total", "bool"),
    ("is_abnormal", "bool"),
    ("notes", "text"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
COPY_COLUMNS = tuple(name for name, _ in COPY_COLUMN_TYPES)
_COPY_TYPES = [pg_type for _, pg_type in COPY_COLUMN_TYPES]


def copy_row(v: ValidReading, *, user_id: Any, data_source_id: Any, now: datetime) -> tuple:
    """A validated reading as the COPY writes it, in COPY_COLUMNS order (plain readings: not a daily total)."""
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
        data_source_id,
        v.client_id,
        v.external_id,
        False,
        v.is_abnormal,
        v.notes,
        now,
        now,
    )


def _insert_in_bulk(
    source: DataSource,
    valid: list[tuple[int, ValidReading]],
    results: list[ItemResult | uuid.UUID | None],
    now: datetime,
    touched: set[tuple[int, date]],
) -> None:
    """Insert readings that have no replace semantics, skipping any already stored (see the module)."""
    rows = [copy_row(v, user_id=source.user_id, data_source_id=source.pk, now=now) for _, v in valid]
    if connection.vendor != "postgresql":  # the zero-setup SQLite default
        Reading.objects.bulk_create(
            (
                Reading(
                    id=row[0],
                    user_id=source.user_id,
                    data_source=source,
                    created_at=now,
                    updated_at=now,
                    **v.model_fields(),
                )
                for row, (_, v) in zip(rows, valid, strict=True)
            ),
            batch_size=500,
            ignore_conflicts=True,
        )
        inserted = set(Reading.objects.filter(pk__in=[row[0] for row in rows]).values_list("id", flat=True))
    else:
        inserted = _copy(rows)
    repeats: list[tuple[int, ValidReading]] = []
    for row, (index, v) in zip(rows, valid, strict=True):
        if inserted is None or row[0] in inserted:
            results[index] = row[0]  # created: the bare id (see IngestOutcome)
            touched.add((v.metric_type.id, v.local_date))
        else:
            repeats.append((index, v))
    if repeats:
        stored = _stored_ids(source, [v for _, v in repeats])
        for index, v in repeats:
            results[index] = ItemResult(index, "duplicate", id=stored(v))


def _copy(rows: list[tuple]) -> set[uuid.UUID] | None:
    """COPY the rows in; answers the ids stored, or None when all of them were."""
    columns = ", ".join(COPY_COLUMNS)
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
            return None
        # Some are stored already (a re-run, an overlap): stage them and skip the conflicts, which
        # also skips repeats within the batch.
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
            "ON CONFLICT DO NOTHING RETURNING id"
        )
        stored = {row[0] for row in cursor.fetchall()}
        cursor.execute("TRUNCATE reading_stage")
    return stored


def _stored_ids(source: DataSource, repeats: list[ValidReading]):  # noqa: ANN202
    """A lookup of the stored reading each repeat is a duplicate of (at most three queries)."""
    by_client: dict[uuid.UUID, uuid.UUID] = {}
    client_ids = [v.client_id for v in repeats if v.client_id is not None]
    if client_ids:
        by_client = dict(
            Reading.objects.filter(user_id=source.user_id, client_id__in=client_ids).values_list("client_id", "id")
        )
    by_external: dict[str, uuid.UUID] = {}
    external_ids = [v.external_id for v in repeats if v.external_id]
    if external_ids:
        by_external = dict(
            Reading.objects.filter(data_source=source, external_id__in=external_ids).values_list("external_id", "id")
        )
    moments = [v.recorded_at for v in repeats]
    by_moment = {
        (type_id, at): pk
        for type_id, at, pk in Reading.objects.filter(
            data_source=source, recorded_at__gte=min(moments), recorded_at__lte=max(moments)
        ).values_list("metric_type_id", "recorded_at", "id")
    }

    def stored(v: ValidReading) -> uuid.UUID | None:
        return (
            by_client.get(v.client_id)
            or by_external.get(v.external_id)
            or by_moment.get((v.metric_type.id, v.recorded_at))
        )

    return stored


# --- The app's readings ------------------------------------------------------------------------


def record_readings(*, user: User, items: Sequence[Any], now: datetime | None = None) -> IngestOutcome:
    """The app's readings (one POST, or a bulk-create from an offline sync), with a result per item.

    Each goes to the user's own source of its `source` kind (their manual entries by default),
    made when first needed, through `ingest_readings`.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        kind = item.get("source") if isinstance(item, Mapping) else None
        groups[kind if is_source_kind(kind) else SourceKind.MANUAL].append(index)  # validation names a bad kind
    results: list[ItemResult] = []
    readings: dict[int, Reading] = {}
    for kind, indexes in groups.items():
        with transaction.atomic():  # a savepoint: a kind none of whose readings is valid leaves nothing, not
            source = app_data_source(user=user, kind=kind)  # even its source made for them
            outcome = ingest_readings(data_source=source, items=[items[i] for i in indexes], now=now)
            if all(result.status == "error" for result in outcome.results):
                transaction.set_rollback(True)
        for result in outcome.results:
            if result.index in outcome.readings:
                readings[indexes[result.index]] = outcome.readings[result.index]
            result.index = indexes[result.index]
            results.append(result)
    results.sort(key=lambda r: r.index)
    return IngestOutcome(results, readings)


def record_reading(*, user: User, data: Mapping[str, Any]) -> tuple[Reading, bool]:
    """One reading; returns it and whether anything was stored (a retried client_id stores nothing)."""
    result = record_readings(user=user, items=[data]).results[0]
    if result.status == "error":
        raise ValidationError(
            {result.error["attr"]: ValidationError(result.error["detail"], code=result.error["code"])}
        )
    reading = Reading.objects.select_related("data_source").get(pk=result.id)
    return reading, result.status in ("created", "replaced")
