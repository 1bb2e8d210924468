"""The metric catalog: loading it from the app's CSV, and looking types up by code or label."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

CATALOG_CSV = Path(__file__).parent / "data" / "metric_catalog.csv"
_ANNOTATION = re.compile(r"\(.*\)$")  # "kPa(x7.50062)": the factor is pint's to know, not ours


def _float(text: str) -> float | None:
    return float(text) if text.strip() else None


def _int(text: str) -> int | None:
    return int(text) if text.strip() else None


def _display_units(text: str) -> list[dict[str, Any]]:
    """`mmol/L=mmol/L@1|kPa=kPa@1`: UCUM code = human label @ decimals shown."""
    units = []
    for entry in filter(None, text.split("|")):
        code, rest = entry.split("=", 1)
        label, precision = rest.rsplit("@", 1)
        units.append({"unit": code, "label": label, "precision": int(precision)})
    return units


def catalog_rows() -> list[dict[str, Any]]:
    """The CSV as model field values, one dict per metric type."""
    rows = []
    with CATALOG_CSV.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append(
                {
                    "id": int(row["id"]),
                    "code": row["code"],
                    "display_name": row["display"],
                    "aliases": [a for a in row["aliases"].split("|") if a],
                    "loinc": row["loinc"],
                    "unit": row["unit"],
                    "accepted_units": [_ANNOTATION.sub("", u) for u in row["accepted_units"].split("|") if u],
                    "plausible_min": float(row["plausible_min"]),
                    "plausible_max": float(row["plausible_max"]),
                    "warn_low": _float(row["warn_low"]),
                    "warn_high": _float(row["warn_high"]),
                    "critical_low": _float(row["critical_low"]),
                    "critical_high": _float(row["critical_high"]),
                    "aggregation": row["aggregation"],
                    "value_kind": row["value_kind"],
                    "is_interval": row["interval"] == "yes",
                    "molar_mass_g_per_mol": _float(row["molar_mass_g_per_mol"]),
                    "primary_loinc": row["primary_loinc"],
                    "secondary_loinc": row["secondary_loinc"],
                    "secondary_min": _float(row["secondary_min"]),
                    "secondary_max": _float(row["secondary_max"]),
                    "secondary_warn_high": _float(row["secondary_warn_high"]),
                    "secondary_critical_high": _float(row["secondary_critical_high"]),
                    "notes": row["notes"],
                    "precision": int(row["precision"]),
                    "unit_label": row["unit_label"],
                    "imperial_unit": row["imperial_unit"],
                    "imperial_unit_label": row["imperial_unit_label"],
                    "imperial_precision": _int(row["imperial_precision"]),
                    "display_units": _display_units(row["display_units"]),
                }
            )
    return rows


def sync_catalog(metric_type_model) -> int:  # noqa: ANN001 - a model class, historical in migrations
    """Create or update every catalog row; return how many there are.

    Only the columns the (historical) model has: an early migration loads the catalog before later
    migrations add columns, and those migrations sync again.
    """
    rows = catalog_rows()
    fields = {field.name for field in metric_type_model._meta.get_fields()}
    for row in rows:
        metric_type_model.objects.update_or_create(
            id=row["id"], defaults={name: value for name, value in row.items() if name in fields}
        )
    return len(rows)


def lookup_key(label: str) -> str:
    """`Heart Rate`, `heart-rate` and `heart_rate` are one key."""
    return re.sub(r"[\s\-]+", "_", label.strip().lower())


class Catalog:
    """The metric types in memory, by id and by every code, alias and display name."""

    def __init__(self, types: list) -> None:  # noqa: ANN001
        self.by_id = {t.id: t for t in types}
        self.by_key: dict[str, Any] = {}
        self.by_label: dict[str, Any] = {}
        for t in types:
            for label in [t.code, t.display_name, *t.aliases]:
                self.by_key.setdefault(lookup_key(label), t)

    def resolve(self, label: Any):  # noqa: ANN201
        if isinstance(label, int) and not isinstance(label, bool):
            return self.by_id.get(label)
        if not isinstance(label, str):
            return None
        found = self.by_label.get(label)  # the exact spelling seen before: no normalising
        if found is None:
            found = self.by_key.get(lookup_key(label))
            if found is not None and len(self.by_label) < 10_000:
                self.by_label[label] = found
        return found

    @property
    def codes(self) -> list[str]:
        return [t.code for t in self.by_id.values()]


_catalog: Catalog | None = None


def get_catalog() -> Catalog:
    """The catalog, read from the database once per process (it changes only by migration)."""
    global _catalog
    if _catalog is None or not _catalog.by_id:
        from .models import MetricType

        _catalog = Catalog(list(MetricType.objects.all()))
    return _catalog
