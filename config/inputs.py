"""What every way in accepts as text and as a date or time, so nothing reaches PostgreSQL that it cannot store.

Text. PostgreSQL's text (and JSONB) cannot hold U+0000, and UTF-8 cannot encode a lone UTF-16 surrogate
(U+D800 to U+DFFF), which a JSON `\\ud800` escape decodes to; either one made the insert or its encoding fail
with a 500. DRF's CharField already refuses both; `text_error` is the same rule for what it does not see: JSON
values and keys (`JSONField`), query parameters read by hand (FHIR search), an ingest envelope and the
readings of the one ingest path (health_metrics.validation).

Dates and times. Python parses UTC offsets up to ±23:59 and years up to 9999, but PostgreSQL takes offsets
only to ±15:59, and 9999-12-31T23:59:59-12:00 is in the year 10000 once in UTC, where Python overflows. So
a date, or a datetime once in UTC, must lie from 1900-01-01 (nothing earlier is health data; readings had
that rule already) to 9998-12-31 (a year short of Python's end, which leaves room for a day's or a summary
period's arithmetic), and an offset must be within ±15:59. `utc_datetime` and `check_date` are the rule;
the DRF fields, the Django validators and the ModelSerializer base below apply it, and the hand-written
parsers (readings, ingest envelope, filters, FHIR search) call it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils import timezone
from rest_framework import serializers

EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(9998, 12, 31)
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
END = datetime(9999, 1, 1, tzinfo=UTC)  # exclusive: the first moment after LATEST_DATE
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)

NULL_CHARACTER = "null_character"
SURROGATE_CHARACTER = "surrogate_character"
OUT_OF_RANGE = "out_of_range"
INVALID_OFFSET = "invalid_offset"

_SURROGATES = re.compile("[\ud800-\udfff]")


class InputError(ValueError):
    """A value no way in accepts: a stable `code` and a human `message`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


# --- Text ------------------------------------------------------------------------------------------------


def text_error(value: str) -> InputError | None:
    """Why `value` cannot be stored as text (U+0000, a lone surrogate), or None. Cheap for ASCII text."""
    if "\x00" in value:
        return InputError(NULL_CHARACTER, "Must not contain the null character (U+0000).")
    if not value.isascii() and _SURROGATES.search(value):
        return InputError(SURROGATE_CHARACTER, "Must not contain a lone UTF-16 surrogate (U+D800 to U+DFFF).")
    return None


def json_text_error(value: Any) -> tuple[str, InputError] | None:
    """The first string (key or value) of JSON data that cannot be stored, as (its path, the error), or None.

    Iterative, so no nesting can exhaust the stack (the parser limits nesting anyway).
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            error = text_error(item)
            if error is not None:
                return path, error
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                error = text_error(key) if isinstance(key, str) else None
                if error is not None:
                    return f"{path}.<key>" if path else "<key>", error
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{path}.{index}" if path else str(index), child) for index, child in enumerate(item))
    return None


# --- Dates and datetimes ---------------------------------------------------------------------------------

DATE_RANGE_MESSAGE = f"Must be from {EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}."
DATETIME_RANGE_MESSAGE = f"Must be from {EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()} (in UTC)."


def utc_datetime(value: datetime, offset: timedelta | None = None) -> datetime:
    """`value` in UTC (a naive one taken as UTC), or InputError if PostgreSQL or Python cannot hold it.

    `offset`: value.utcoffset() when the caller has it already (a measured hot path: readings).
    """
    offset = value.utcoffset() if offset is None else offset
    if offset is not None and not -MAX_UTC_OFFSET <= offset <= MAX_UTC_OFFSET:
        raise InputError(INVALID_OFFSET, "The UTC offset must be within ±15:59.")
    try:
        moment = value.astimezone(UTC) if offset is not None else value.replace(tzinfo=UTC)
    except OverflowError:
        moment = None
    if moment is None or not EARLIEST <= moment < END:
        raise InputError(OUT_OF_RANGE, DATETIME_RANGE_MESSAGE)
    return moment


def check_date(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise InputError(OUT_OF_RANGE, DATE_RANGE_MESSAGE)
    return value


def validate_datetime(value: datetime) -> None:
    """The rule as a Django validator (forms, django-filter's filters)."""
    try:
        utc_datetime(value)
    except InputError as error:
        raise DjangoValidationError(error.message, code=error.code) from None


def validate_date(value: date) -> None:
    try:
        check_date(value)
    except InputError as error:
        raise DjangoValidationError(error.message, code=error.code) from None


# --- DRF fields ------------------------------------------------------------------------------------------


class DateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField within what PostgreSQL and Python both hold (the offset checked as sent)."""

    def enforce_timezone(self, value: datetime) -> datetime:
        try:
            if value.utcoffset() is not None:
                utc_datetime(value)  # before DRF converts it, while the offset sent is still there
            value = super().enforce_timezone(value)
            utc_datetime(value if timezone.is_aware(value) else value.replace(tzinfo=UTC))
        except InputError as error:
            raise serializers.ValidationError(error.message, code=error.code) from None
        return value


class DateField(serializers.DateField):
    """DRF's DateField from 1900-01-01 to 9998-12-31."""

    def to_internal_value(self, value: Any) -> date:
        parsed = super().to_internal_value(value)
        try:
            return check_date(parsed)
        except InputError as error:
            raise serializers.ValidationError(error.message, code=error.code) from None


class JSONField(serializers.JSONField):
    """DRF's JSONField refusing text PostgreSQL cannot store anywhere in the value, keys included."""

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        found = json_text_error(value)
        if found is not None:
            path, error = found
            where = f" (at {path})" if path else ""
            raise serializers.ValidationError(error.message.rstrip(".") + where + ".", code=error.code)
        return value


# The project's ModelSerializer: model dates, datetimes and JSON get the fields above. (A comment, not a
# docstring: drf-spectacular would show a docstring as the description of every serializer without one.)
class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: DateTimeField,
        models.DateField: DateField,
        models.JSONField: JSONField,
    }


def name_the_valid_choices() -> None:
    """Make every serializer ChoiceField (and MultipleChoiceField, which calls it per item) name the valid
    choices when it refuses one, as API.md promises; DRF's own message says only that the value is not one.

    Called once at start (accounts' AppConfig.ready); DRF builds ChoiceFields for every model field with
    choices, so this is the one place that reaches them all.
    """
    original = serializers.ChoiceField.to_internal_value
    if getattr(original, "names_choices", False):
        return

    def to_internal_value(self: serializers.ChoiceField, data: Any) -> Any:
        try:
            return original(self, data)
        except serializers.ValidationError as exc:
            if exc.get_codes() != ["invalid_choice"]:
                raise
            valid = ", ".join(str(choice) for choice in self.choice_strings_to_values)
            message = f'"{data}" is not a valid choice. Valid choices: {valid}.'
            raise serializers.ValidationError(message, code="invalid_choice") from None

    to_internal_value.names_choices = True
    serializers.ChoiceField.to_internal_value = to_internal_value
