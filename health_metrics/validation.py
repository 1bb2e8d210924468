"""One code path that turns a reading as a client sent it (JSON values) into a row to store.

Used by the API (one reading, bulk-create, edits) and by device and integration ingest, so
every path applies the same rules: known type and unit, conversion to the canonical unit,
the plausible range after conversion (impossible values refused, abnormal ones flagged),
no time more than five minutes ahead, no text PostgreSQL cannot store (U+0000, a lone UTF-16
surrogate) and no time it cannot hold (config.inputs: offsets within ±15:59, years to 9998 in UTC), and
the reading's own UTC offset and local day.
"""

from __future__ import annotations

import math
import uuid
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.utils.dateparse import parse_datetime

from config.inputs import DATETIME_RANGE_MESSAGE, OUT_OF_RANGE, InputError, text_error, utc_datetime

from .catalog import Catalog
from .models import Aggregation, MetricType, SourceKind
from .units import UnknownUnit, conversion

FUTURE_TOLERANCE = timedelta(minutes=5)
SOURCES = frozenset(SourceKind.values)  # SourceKind.values builds a new list on every access


def is_source_kind(value: object) -> bool:
    """Whether a client's `source` names a kind (any JSON value may arrive: a list or object is not one)."""
    return isinstance(value, str) and value in SOURCES


EARLIEST_YEAR = 1900
MAX_NOTES = 2000
# Every string of a reading that is stored or looked up: PostgreSQL text cannot hold U+0000, nor can UTF-8
# encode a lone surrogate.
TEXT_FIELDS = frozenset(
    ("metric_type", "unit", "recorded_at", "ended_at", "source", "client_id", "external_id", "notes")
)


class ReadingError(ValueError):
    """A reading refused, naming the field (`attr`), a stable `code` and a human `detail`."""

    def __init__(self, attr: str, code: str, detail: str) -> None:
        super().__init__(detail)
        self.attr, self.code, self.detail = attr, code, detail


@dataclass(slots=True)
class ValidReading:
    metric_type: MetricType
    value: float
    secondary_value: float | None
    original_value: float
    original_secondary_value: float | None
    original_unit: str
    recorded_at: datetime
    utc_offset_minutes: int
    ended_at: datetime | None
    local_date: date
    source: str
    client_id: uuid.UUID | None
    external_id: str
    notes: str
    is_abnormal: bool

    @property
    def is_daily_total(self) -> bool:
        """Sum types' point readings are running daily totals: one per data source and local day."""
        return self.metric_type.aggregation == Aggregation.SUM and self.ended_at is None

    def model_fields(self) -> dict[str, Any]:
        """The Reading fields (the kind asked for, `source`, is the data source's business, not the row's)."""
        fields = {name: getattr(self, name) for name in self.__slots__ if name != "source"}
        fields["is_daily_total"] = self.is_daily_total
        return fields


def _refuse_unstorable_text(data: Mapping[str, Any]) -> None:
    """U+0000 or a lone surrogate in any text field is the item's error: stored, it would fail the insert of
    every reading with it.

    Measured hot path (10,000 readings a device batch): one pass over the item's own few values; plain
    ASCII text without U+0000 (nearly all of it) costs a substring test and an ASCII test, and no call.
    """
    for name, raw in data.items():
        if type(raw) is str and ("\x00" in raw or not raw.isascii()) and name in TEXT_FIELDS:
            error = text_error(raw)
            if error is not None:
                raise ReadingError(name, error.code, error.message)


def _number(data: Mapping[str, Any], *names: str) -> tuple[str, float | None]:
    for name in names:
        if name in data and data[name] is not None:
            raw = data[name]
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ReadingError(name, "invalid", "Must be a number.")
            try:
                number = float(raw)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise ReadingError(name, "invalid", "Must be a finite number.")
            return name, number
    return names[0], None


_fromisoformat = datetime.fromisoformat


def _datetime(data: Mapping[str, Any], name: str, tz: zoneinfo.ZoneInfo) -> datetime | None:
    raw = data.get(name)
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        parsed = raw
    elif isinstance(raw, str):
        try:
            # The usual shape (YYYY-MM-DDTHH:MM...) through the C parser; anything else through Django's.
            parsed = _fromisoformat(raw) if len(raw) >= 16 and raw[10] in "Tt " else parse_datetime(raw)
        except ValueError:
            parsed = None
        if parsed is None:
            raise ReadingError(name, "invalid", "Must be an ISO 8601 date and time, e.g. 2026-03-08T07:30:00-05:00.")
    else:
        raise ReadingError(name, "invalid", "Must be an ISO 8601 date and time.")
    if parsed.year < EARLIEST_YEAR:
        raise ReadingError(name, "invalid", f"Must be after {EARLIEST_YEAR}.")
    if parsed.tzinfo is None:  # no offset given: the user's own time zone says what it means
        return parsed.replace(tzinfo=tz)
    if isinstance(raw, str) and raw[-1] in "Zz":
        # A UTC instant ("Z", as device clocks send) carries no local offset: take the user's.
        try:
            return parsed.astimezone(tz)
        except OverflowError:  # 9999-12-31T23:59:59Z is in the year 10000 east of Greenwich
            raise ReadingError(name, OUT_OF_RANGE, DATETIME_RANGE_MESSAGE) from None
    return parsed


def _utc(moment: datetime, offset: timedelta | None, name: str) -> datetime:
    """The moment in UTC, refused (as the item's error) where PostgreSQL or Python cannot hold it.

    Measured hot path: with the offset passed in (it is needed anyway), about 1-2 ms per 10,000 readings
    more than the bare conversion to UTC it replaced (timeit on this machine).
    """
    try:
        return utc_datetime(moment, offset)
    except InputError as error:
        raise ReadingError(name, error.code, error.message) from None


def _in_range(attr: str, value: float, low: float | None, high: float | None, unit: str) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        raise ReadingError(
            attr, "out_of_range", f"{value:g} {unit} is outside the plausible range {low:g}-{high:g} {unit}."
        )


def parse_reading(
    data: Mapping[str, Any],
    *,
    catalog: Catalog,
    tz: zoneinfo.ZoneInfo,
    now: datetime,
    default_source: str = SourceKind.MANUAL,
    metric_type: MetricType | None = None,
    text_checked: bool = False,
) -> ValidReading:
    """Validate and convert one reading. Raises ReadingError naming the first problem."""
    if type(data) is not dict and not isinstance(data, Mapping):  # the common case first: ABC checks are slow
        raise ReadingError("non_field_errors", "invalid", "Each reading must be a JSON object.")
    if not text_checked:  # the caller knows the batch's text is all storable (see ingest_readings)
        _refuse_unstorable_text(data)
    if metric_type is None:
        label = data.get("metric_type")
        if label is None or label == "":
            raise ReadingError("metric_type", "required", "This field is required.")
        metric_type = catalog.resolve(label)
        if metric_type is None:
            raise ReadingError(
                "metric_type",
                "invalid_choice",
                f"Unknown metric type {label!r}. Valid types: {', '.join(catalog.codes)}.",
            )

    unit = data.get("unit") or metric_type.unit
    if not isinstance(unit, str):
        raise ReadingError("unit", "invalid", "Must be a string.")
    try:
        scale, offset = conversion(metric_type, unit)
    except UnknownUnit:
        choices = ", ".join([metric_type.unit, *metric_type.accepted_units])
        raise ReadingError(
            "unit", "invalid_choice", f"Unknown unit {unit!r} for {metric_type.code}. Valid units: {choices}."
        ) from None

    secondary_attr, original_secondary = "diastolic", None
    if metric_type.is_pair:
        attr, original = _number(data, "systolic", "systolic_value", "value")
        secondary_attr, original_secondary = _number(data, "diastolic", "diastolic_value", "secondary_value")
        if original is None:
            raise ReadingError("systolic", "required", "Blood pressure needs systolic and diastolic values.")
        if original_secondary is None:
            raise ReadingError("diastolic", "required", "Blood pressure needs systolic and diastolic values.")
    else:
        attr, original = _number(data, "value")
        if original is None:
            raise ReadingError("value", "required", "This field is required.")

    value = original * scale + offset
    secondary = original_secondary * scale + offset if original_secondary is not None else None
    _in_range(attr, value, metric_type.plausible_min, metric_type.plausible_max, metric_type.unit)
    if secondary is not None:
        _in_range(secondary_attr, secondary, metric_type.secondary_min, metric_type.secondary_max, metric_type.unit)
        if value <= secondary:
            raise ReadingError(secondary_attr, "invalid", "The systolic value must be above the diastolic value.")

    recorded_at = _datetime(data, "recorded_at", tz)
    if recorded_at is None:
        raise ReadingError("recorded_at", "required", "This field is required.")
    # Compared in UTC: two datetimes with the same tzinfo compare without asking the zone for offsets.
    recorded_offset = recorded_at.utcoffset() or timedelta(0)
    recorded_utc, latest = _utc(recorded_at, recorded_offset, "recorded_at"), now.astimezone(UTC) + FUTURE_TOLERANCE
    if recorded_utc > latest:
        raise ReadingError("recorded_at", "in_future", "The reading is more than 5 minutes in the future.")
    ended_at = _datetime(data, "ended_at", tz)
    ended_utc = _utc(ended_at, None, "ended_at") if ended_at is not None else None
    if ended_utc is not None:
        if ended_utc < recorded_utc:
            raise ReadingError("ended_at", "invalid", "The end is before the start.")
        if ended_utc > latest:
            raise ReadingError("ended_at", "in_future", "The end is more than 5 minutes in the future.")
    utc_offset = recorded_offset
    # The reading's day by its own local time; an interval (sleep) belongs to the day it ends.
    local_date = (ended_at or recorded_at).date()

    source = data.get("source")
    if source is None or source == "":
        source = default_source
    if not is_source_kind(source):
        raise ReadingError("source", "invalid_choice", f"Valid sources: {', '.join(SourceKind.values)}.")
    client_id = data.get("client_id")
    if client_id is not None and client_id != "":
        try:
            client_id = uuid.UUID(str(client_id))
        except ValueError:
            raise ReadingError("client_id", "invalid", "Must be a UUID.") from None
    else:
        client_id = None
    external_id = data.get("external_id") or ""
    if not isinstance(external_id, str | int) or len(str(external_id)) > 255:
        raise ReadingError("external_id", "invalid", "Must be a string of at most 255 characters.")
    notes = data.get("notes") or ""
    if not isinstance(notes, str) or len(notes) > MAX_NOTES:
        raise ReadingError("notes", "invalid", f"Must be text of at most {MAX_NOTES} characters.")

    return ValidReading(
        metric_type=metric_type,
        value=value,
        secondary_value=secondary,
        original_value=original,
        original_secondary_value=original_secondary,
        original_unit=unit,
        recorded_at=recorded_utc,
        utc_offset_minutes=int(utc_offset.total_seconds() // 60),
        ended_at=ended_utc,
        local_date=local_date,
        source=source,
        client_id=client_id,
        external_id=str(external_id),
        notes=notes,
        is_abnormal=not metric_type.is_normal(value, secondary),
    )
