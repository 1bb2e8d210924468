"""A device's `configuration`: the keys OpenVitals reads, with their types and ranges.

Checked on every write (the API, the admin), so a value the device-health sweep cannot use is a 400
naming the key (`configuration.offline_after_minutes`) instead of a crash at the next sweep. Keys
not listed here are refused too: the configuration holds settings OpenVitals acts on, nothing else.
Rows written before the check (or straight to the database) are read with `read_configuration`,
which raises on them; the sweep isolates that device and goes on (`check_device_health`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError


@dataclass(frozen=True)
class ConfigurationKey:
    minimum: int
    maximum: int
    default: int
    help_text: str

    def describe(self) -> str:
        return f"A whole number from {self.minimum} to {self.maximum}."


CONFIGURATION_KEYS: dict[str, ConfigurationKey] = {
    "offline_after_minutes": ConfigurationKey(
        1, 7 * 24 * 60, 60, "Minutes without contact after which the device is offline (an `offline` alert)."
    ),
    "low_battery_percent": ConfigurationKey(
        1, 99, 15, "A battery level under this percentage opens a `low_battery` alert."
    ),
}


@dataclass(frozen=True)
class DeviceConfiguration:
    """A device's configuration with every key filled in (the defaults where a key is absent)."""

    offline_after_minutes: int
    low_battery_percent: int


def configuration_errors(value: Any) -> dict[str, str]:
    """What is wrong with a configuration, by key ("" for the whole value); empty when it is valid."""
    if not isinstance(value, dict):
        return {"": "Must be a JSON object of settings."}
    errors = {}
    for name, setting in value.items():
        key = CONFIGURATION_KEYS.get(name)
        if key is None:
            errors[name] = f"Unknown configuration key. Known keys: {', '.join(CONFIGURATION_KEYS)}."
        elif isinstance(setting, bool) or not isinstance(setting, int) or not key.minimum <= setting <= key.maximum:
            errors[name] = key.describe()
    return errors


def validate_configuration(value: Any) -> None:
    """The model field's validator (the admin's forms run it): one message per bad key, naming it."""
    errors = configuration_errors(value)
    if errors:
        raise ValidationError(
            [f"{name}: {message}" if name else message for name, message in errors.items()], code="invalid"
        )


def read_configuration(value: Any) -> DeviceConfiguration:
    """The stored configuration with defaults filled in; ValueError when it breaks the schema."""
    errors = configuration_errors(value if value is not None else {})
    if errors:
        raise ValueError("Invalid device configuration: " + "; ".join(f"{k}: {m}" for k, m in errors.items()))
    value = value or {}
    return DeviceConfiguration(**{name: value.get(name, key.default) for name, key in CONFIGURATION_KEYS.items()})
