"""How values are shown: rounded to the catalog's precision, in the reader's units, with human labels.

Values are stored at full precision in the canonical UCUM unit. An answer carries them rounded to the
catalog's `precision` for the type (`value`, `unit`, `unit_label`) and, beside them, the same values in the
unit the reader chose (`display_*`): the type's own choice in the profile's `unit_preferences`, else the
catalog's imperial unit for an imperial reader, else the canonical unit. `?units=metric|imperial` on a read
replaces the profile's choices for that request.

Rounding is half up on the value's shortest decimal text (`Decimal(repr(value)).quantize(..., ROUND_HALF_UP)`):
72.5 bpm shows 73 and 2.675 L shows 2.68, as a person rounding by hand writes them, where `round()` rounds
half to even on the binary float (72, 2.67). Whole-number precisions answer integers (72, not 72.0).

Conversions are pint's, through `units.display_conversion` (the one converter); each (type, unit) is resolved
once per process and then costs a multiplication and an addition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from .units import display_conversion, normalize

if TYPE_CHECKING:
    from .models import MetricType

METRIC, IMPERIAL = "metric", "imperial"
UNIT_SYSTEMS = (METRIC, IMPERIAL)
# Slopes (unit per day) are small: they keep two more decimals than the values they describe.
SLOPE_EXTRA_DECIMALS = 2

_QUANTUM = {precision: Decimal(1).scaleb(-precision) for precision in range(8)}


def round_value(value: float | None, precision: int) -> float | int | None:
    """Half up to `precision` decimals; an int when precision is 0."""
    if value is None:
        return None
    return rounded_pair(value, precision)[0]


def format_value(value: float, precision: int) -> str:
    """The rounded value as text with exactly `precision` decimals: `74.8`, `72`, `98.6`."""
    return rounded_pair(value, precision)[1]


def rounded_pair(value: float, precision: int) -> tuple[float | int, str]:
    """The rounded number and its text, from one rounding (the readings list does this per row)."""
    if abs(value) >= 1e15:  # past float's whole-number precision there is nothing to round, and Decimal's
        whole = int(value)  # context would refuse to quantize it
        return (whole, str(whole)) if precision == 0 else (float(value), f"{value:.{precision}f}")
    if value.is_integer():  # nothing to round (bpm, mmHg, steps): skip Decimal
        whole = int(value)
        return (whole, str(whole)) if precision == 0 else (float(whole), f"{whole}.{'0' * precision}")
    rounded = Decimal(repr(value)).quantize(_QUANTUM[precision], rounding=ROUND_HALF_UP)
    if not rounded:
        rounded = abs(rounded)  # -0.04 °C reads 0.0, not -0.0
    return (int(rounded) if precision == 0 else float(rounded)), f"{rounded:.{precision}f}"


@dataclass(frozen=True)
class DisplayUnit:
    """A unit values are shown in: its UCUM code, human label and decimals, and how to reach it from canonical."""

    unit: str
    label: str
    precision: int
    scale: float = 1.0  # canonical = value * scale + offset
    offset: float = 0.0

    def value(self, canonical: float | None) -> float | int | None:
        """A canonical value in this unit, rounded."""
        if canonical is None:
            return None
        return round_value((canonical - self.offset) / self.scale, self.precision)

    def rate(self, canonical_per_day: float | None) -> float | None:
        """A change per day (a slope): scaled only, never offset (1 °C a day is 1.8 °F a day)."""
        if canonical_per_day is None:
            return None
        return round_value(canonical_per_day / self.scale, self.precision + SLOPE_EXTRA_DECIMALS)

    def value_and_text(self, canonical: float) -> tuple[float | int, str]:
        """`value()` and `text()` of one value from one rounding."""
        return rounded_pair((canonical - self.offset) / self.scale, self.precision)

    def text(self, canonical: float, secondary: float | None = None) -> str:
        """`74.8`, or `120/80` for a pair."""
        first = format_value((canonical - self.offset) / self.scale, self.precision)
        if secondary is None:
            return first
        return f"{first}/{format_value((secondary - self.offset) / self.scale, self.precision)}"


@dataclass(frozen=True)
class TypeDisplay:
    """One metric type as one reader sees it: the canonical unit (rounded) and the unit shown (`display_*`)."""

    canonical: DisplayUnit
    shown: DisplayUnit

    def unit_fields(self) -> dict[str, str]:
        return {
            "unit": self.canonical.unit,
            "unit_label": self.canonical.label,
            "display_unit": self.shown.unit,
            "display_unit_label": self.shown.label,
        }

    def figures(self, row: Mapping[str, Any], names: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """`names` of `row`, rounded in the canonical unit, and converted to the shown unit."""
        canonical = {name: self.canonical.value(row.get(name)) for name in names}
        shown = {name: self.shown.value(row.get(name)) for name in names}
        return canonical, shown


def canonical_unit(metric_type: MetricType) -> DisplayUnit:
    return DisplayUnit(metric_type.unit, metric_type.unit_label or metric_type.unit, metric_type.precision)


def display_choices(metric_type: MetricType) -> list[DisplayUnit]:
    """The units a person may choose for this type: canonical, imperial, then the catalog's other display units."""
    choices = [canonical_unit(metric_type)]
    if metric_type.imperial_unit:
        precision = metric_type.imperial_precision
        choices.append(
            _converted(
                metric_type,
                metric_type.imperial_unit,
                metric_type.imperial_unit_label or metric_type.imperial_unit,
                metric_type.precision if precision is None else precision,
            )
        )
    for other in metric_type.display_units:
        choices.append(_converted(metric_type, other["unit"], other["label"], other["precision"]))
    unique: dict[str, DisplayUnit] = {}
    for choice in choices:
        unique.setdefault(choice.unit, choice)
    return list(unique.values())


def _converted(metric_type: MetricType, unit: str, label: str, precision: int) -> DisplayUnit:
    scale, offset = display_conversion(metric_type, unit)
    return DisplayUnit(unit, label, precision, scale, offset)


_choices_cache: dict[tuple[int, str, int], dict[str, DisplayUnit]] = {}


def _choices_by_key(metric_type: MetricType) -> dict[str, DisplayUnit]:
    """Choices by UCUM code and label, lower-cased, once per type per process (the catalog changes only by
    migration; the key carries the precision so a test that edits a type sees its edit)."""
    key = (metric_type.id, metric_type.unit, metric_type.precision)
    found = _choices_cache.get(key)
    if found is None:
        found = {}
        for choice in display_choices(metric_type):
            found.setdefault(normalize(choice.unit), choice)
            found.setdefault(normalize(choice.label), choice)
        _choices_cache[key] = found
    return found


def choice_for(metric_type: MetricType, unit: str) -> DisplayUnit | None:
    """The display unit `unit` (a UCUM code or label, any case) names for this type, or None."""
    return _choices_by_key(metric_type).get(normalize(unit))


@dataclass
class Units:
    """One request's unit choices: a system, and per-type units (type code -> UCUM code). Resolves each type once."""

    system: str = METRIC
    per_type: Mapping[str, str] = field(default_factory=dict)
    _by_type: dict[int, TypeDisplay] = field(default_factory=dict, repr=False)

    def of(self, metric_type: MetricType) -> TypeDisplay:
        found = self._by_type.get(metric_type.id)
        if found is None:
            canonical = canonical_unit(metric_type)
            shown = canonical
            chosen = self.per_type.get(metric_type.code)
            if chosen:
                shown = choice_for(metric_type, chosen) or canonical
            elif self.system == IMPERIAL and metric_type.imperial_unit:
                shown = choice_for(metric_type, metric_type.imperial_unit) or canonical
            found = self._by_type[metric_type.id] = TypeDisplay(canonical, shown)
        return found


def validate_unit_preferences(value: Any) -> dict[str, str]:
    """A profile's per-type units, `{"blood_glucose": "mmol/L"}`, checked against the catalog.

    Types by code, alias or label; units by UCUM code or label, in any case. Answers them as
    `{type code: UCUM code}`; a Django ValidationError names the valid choices otherwise.
    """
    from .catalog import get_catalog

    if not isinstance(value, dict):
        raise ValidationError('Expected an object of metric type to unit, e.g. {"blood_glucose": "mmol/L"}.')
    catalog = get_catalog()
    cleaned: dict[str, str] = {}
    for type_label, unit in value.items():
        metric_type = catalog.resolve(type_label)
        if metric_type is None:
            raise ValidationError(f"{type_label!r} is not a metric type (see health-metrics/metric-types/).")
        choices = display_choices(metric_type)
        choice = choice_for(metric_type, unit) if isinstance(unit, str) else None
        if choice is None:
            valid = ", ".join(c.unit if c.unit == c.label else f"{c.unit} ({c.label})" for c in choices)
            raise ValidationError(f"{metric_type.code} is shown in one of: {valid}; not {unit!r}.")
        cleaned[metric_type.code] = choice.unit
    return cleaned


UNITS_PARAMETER_HELP = (
    "Units of the display fields for this request: metric (the canonical units) or imperial; "
    "default the reader's profile (preferred_units and per-type unit_preferences)."
)


def units_for_request(request: Any) -> Units:
    """The reader's units: `?units=` when given (400 naming the choices otherwise), else their profile.

    The profile is the reader's own (a clinician reads a patient's values in the clinician's units). It
    comes with the user from the authentication's one query, so it costs no query; resolved once per request.
    """
    from rest_framework.exceptions import ValidationError as DRFValidationError

    if request is None:
        return Units()
    django_request = getattr(request, "_request", request)
    found = getattr(django_request, "_display_units", None)
    if found is not None:
        return found
    query = getattr(request, "query_params", None)
    if query is None:
        query = getattr(request, "GET", {})
    requested = query.get("units")
    if requested is not None:
        if requested not in UNIT_SYSTEMS:
            raise DRFValidationError(
                {"units": [f"{requested!r} is not a unit system; choose one of: {', '.join(UNIT_SYSTEMS)}."]},
                code="invalid_choice",
            )
        found = Units(system=requested)
    else:
        found = _profile_units(getattr(request, "user", None))
    django_request._display_units = found
    return found


def _profile_units(user: Any) -> Units:
    from django.core.exceptions import ObjectDoesNotExist

    if user is None or not user.is_authenticated:
        return Units()
    try:
        profile = user.profile
    except ObjectDoesNotExist:
        return Units()
    return Units(system=profile.preferred_units or METRIC, per_type=profile.unit_preferences or {})


def units_parameter() -> Any:
    """`?units=` for the OpenAPI document of every read that shows values."""
    from drf_spectacular.utils import OpenApiParameter

    return OpenApiParameter(
        name="units", type=str, enum=list(UNIT_SYSTEMS), required=False, description=UNITS_PARAMETER_HELP
    )


class DisplayUnitsMixin:
    """Viewsets whose answers show values: `?units=` is checked on every request, before any work (400)."""

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        units_for_request(request)
