"""Checks on profile preferences that belong to a higher app, registered by it (accounts imports no domain app).

`health_metrics` registers the check of `Profile.unit_preferences` against its catalog when it is ready;
until then (or without it) only the shape is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError

UnitPreferencesValidator = Callable[[Any], dict[str, str]]
_unit_preferences_validator: UnitPreferencesValidator | None = None


def register_unit_preferences_validator(validator: UnitPreferencesValidator) -> None:
    """`validator(value)` answers the cleaned `{type code: unit}` or raises Django's ValidationError."""
    global _unit_preferences_validator
    _unit_preferences_validator = validator


def clean_unit_preferences(value: Any) -> dict[str, str]:
    if _unit_preferences_validator is not None:
        return _unit_preferences_validator(value)
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError('Expected an object of metric type to unit, e.g. {"blood_glucose": "mmol/L"}.')
    return value


def validate_unit_preferences(value: Any) -> None:
    """The model field's validator (admin forms, full_clean)."""
    clean_unit_preferences(value)
