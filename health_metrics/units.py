"""Unit conversion through pint, with UCUM and everyday spellings mapped to pint once, here.

The catalog names, per metric type, its canonical UCUM unit and the spellings it accepts.
`conversion(metric_type, unit)` resolves a spelling to `(scale, offset)` once per
(type, unit) and caches it, so converting a reading on the hot path costs one
multiplication (and one addition, for the affine °F).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import pint

if TYPE_CHECKING:
    from .models import MetricType

ureg = pint.UnitRegistry()

# Every spelling the catalog uses (lower-cased) and the pint expression it means.
PINT_SPELLINGS: dict[str, str] = {
    "mm[hg]": "mmHg",
    "mmhg": "mmHg",
    "kpa": "kPa",
    "/min": "1/min",
    "bpm": "1/min",
    "beats/min": "1/min",
    "breaths/min": "1/min",
    "ms": "millisecond",
    "s": "second",
    "%": "percent",
    "fraction": "dimensionless",
    "cel": "degC",
    "degc": "degC",
    "°c": "degC",
    "degf": "degF",
    "[degf]": "degF",
    "°f": "degF",
    "mg/dl": "mg/dL",
    "mmol/l": "mmol/L",
    "kg": "kilogram",
    "g": "gram",
    "lb": "pound",
    "lbs": "pound",
    "[lb_av]": "pound",
    "st": "stone",
    "[st]": "stone",
    "cm": "centimeter",
    "m": "meter",
    "km": "kilometer",
    "in": "inch",
    "[in_i]": "inch",
    "ft": "foot",
    "mi": "mile",
    "[mi_i]": "mile",
    "kg/m2": "kg/m**2",
    "kg/m²": "kg/m**2",
    "{steps}": "dimensionless",
    "steps": "dimensionless",
    "count": "dimensionless",
    "{#}": "dimensionless",
    "{score}": "dimensionless",
    "kcal": "kilocalorie",
    "kj": "kilojoule",
    "cal": "kilocalorie",  # consumer apps' "cal" is the food Calorie (kcal)
    "min": "minute",
    "h": "hour",
    "ml/kg/min": "mL/kg/min",
    "l": "liter",
    "ml": "milliliter",
    "[foz_us]": "US_fluid_ounce",
    "cup": "US_cup" if "US_cup" in ureg else "cup",
    "l/min": "L/min",
}


class UnknownUnit(ValueError):
    """The unit is not one the metric type accepts."""


def normalize(unit: str) -> str:
    return unit.strip().lower()


@lru_cache(maxsize=1024)
def _conversion(canonical: str, unit_key: str, molar_mass_g_per_mol: float | None) -> tuple[float, float]:
    source = ureg.Quantity(0, PINT_SPELLINGS[unit_key]), ureg.Quantity(1, PINT_SPELLINGS[unit_key])
    target = PINT_SPELLINGS[normalize(canonical)]
    points = []
    for quantity in source:
        if molar_mass_g_per_mol and quantity.check("[substance] / [length] ** 3"):
            quantity = quantity * ureg.Quantity(molar_mass_g_per_mol, "g/mol")
        points.append(quantity.to(target).magnitude)
    offset, at_one = points
    return at_one - offset, offset


def conversion(metric_type: MetricType, unit: str | None) -> tuple[float, float]:
    """`(scale, offset)` taking `unit` to the type's canonical unit; UnknownUnit if not accepted."""
    if unit is None or unit == "":
        return 1.0, 0.0
    key = normalize(unit)
    if key not in metric_type.unit_keys:
        raise UnknownUnit(unit)
    return _conversion(metric_type.unit, key, metric_type.molar_mass_g_per_mol)


def display_conversion(metric_type: MetricType, unit: str) -> tuple[float, float]:
    """`(scale, offset)` taking `unit` to the canonical unit, for any unit this module can spell (display units
    need not be accepted as input): the canonical value `c` reads `(c - offset) / scale` in `unit`."""
    return _conversion(metric_type.unit, normalize(unit), metric_type.molar_mass_g_per_mol)
