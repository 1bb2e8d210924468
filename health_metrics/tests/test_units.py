"""Unit conversion to each type's canonical unit, unit spellings, type labels and the catalog."""

import pytest

from conftest import bearer
from health_metrics import units
from health_metrics.catalog import catalog_rows
from health_metrics.models import MetricType, Reading
from health_metrics.units import UnknownUnit, conversion

pytestmark = pytest.mark.django_db

CATALOG = {row["code"]: row for row in catalog_rows()}
# Textbook factors, written out rather than taken from pint.
POUND_KG = 0.45359237
STONE_KG = 14 * POUND_KG
KPA_MMHG = 7.500615758
GLUCOSE_MGDL_PER_MMOLL = 18.01559
CHOLESTEROL_MGDL_PER_MMOLL = 38.67


def metric(code: str) -> MetricType:
    """A catalog type as loaded from the CSV (an unsaved row: conversion needs no database)."""
    return MetricType(**CATALOG[code])


def convert(code: str, unit: str, value: float) -> float:
    scale, offset = conversion(metric(code), unit)
    return value * scale + offset


def reading_body(**fields):
    return {"recorded_at": "2026-11-20T08:00:00Z", **fields}


# --- conversion factors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "unit", "value", "expected"),
    [
        ("body_weight", "lb", 150, 150 * POUND_KG),
        ("body_weight", "lbs", 150, 150 * POUND_KG),
        ("body_weight", "[lb_av]", 150, 150 * POUND_KG),
        ("body_weight", "st", 11, 11 * STONE_KG),
        ("body_weight", "[st]", 11, 11 * STONE_KG),
        ("body_weight", "g", 70500, 70.5),
        ("body_temperature", "degF", 98.6, 37.0),
        ("body_temperature", "°F", 98.6, 37.0),
        ("body_temperature", "degF", 212, 100.0),
        ("body_temperature", "degC", 37.2, 37.2),
        ("blood_glucose", "mmol/L", 5.5, 5.5 * GLUCOSE_MGDL_PER_MMOLL),
        ("glucose_cgm", "mmol/L", 10, 10 * GLUCOSE_MGDL_PER_MMOLL),
        ("cholesterol_total", "mmol/L", 5.2, 5.2 * CHOLESTEROL_MGDL_PER_MMOLL),
        ("cholesterol_ldl", "mmol/L", 3, 3 * CHOLESTEROL_MGDL_PER_MMOLL),
        ("triglycerides", "mmol/L", 1.7, 1.7 * 88.57),
        ("blood_pressure", "kPa", 16, 16 * KPA_MMHG),
        ("water_intake", "mL", 250, 0.25),
        ("water_intake", "[foz_us]", 8, 8 * 0.0295735295625),
        ("oxygen_saturation", "fraction", 0.97, 97),
        ("body_height", "in", 70, 70 * 2.54),
        ("body_height", "ft", 6, 6 * 30.48),
        ("body_height", "m", 1.8, 180),
        ("distance_walking_running", "mi", 3, 3 * 1609.344),
        ("dietary_energy", "kJ", 4184, 1000),
        ("sleep_duration", "min", 450, 7.5),
        ("heart_rate_variability_sdnn", "s", 0.045, 45),
    ],
)
def test_a_unit_converts_to_the_canonical_unit_by_the_textbook_factor(code, unit, value, expected):
    assert convert(code, unit, value) == pytest.approx(expected, rel=1e-9)


def test_150_lb_is_68_0388555_kg():
    assert convert("body_weight", "lb", 150) == pytest.approx(68.0388555, rel=1e-9)


def test_98_6_fahrenheit_is_37_celsius():
    assert convert("body_temperature", "degF", 98.6) == pytest.approx(37.0, rel=1e-9)


def test_5_5_mmol_per_litre_of_glucose_is_99_085745_mg_per_decilitre():
    assert convert("blood_glucose", "mmol/L", 5.5) == pytest.approx(99.085745, rel=1e-9)


def test_the_canonical_unit_and_no_unit_convert_by_one():
    assert conversion(metric("heart_rate"), "/min") == (1.0, 0.0)
    assert conversion(metric("heart_rate"), None) == (1.0, 0.0)
    assert conversion(metric("heart_rate"), "") == (1.0, 0.0)


def test_a_unit_the_type_does_not_accept_is_unknown():
    with pytest.raises(UnknownUnit):
        conversion(metric("heart_rate"), "kg")
    with pytest.raises(UnknownUnit):
        conversion(metric("body_weight"), "furlong")


def test_the_conversion_is_cached():
    conversion(metric("body_weight"), "lb")
    hits = units._conversion.cache_info().hits
    conversion(metric("body_weight"), "LB")
    assert units._conversion.cache_info().hits == hits + 1


# --- every catalog type and unit ---------------------------------------------------------------


EVERY_UNIT = [(row["code"], unit) for row in catalog_rows() for unit in [row["unit"], *row["accepted_units"]]]


@pytest.mark.parametrize(("code", "unit"), EVERY_UNIT, ids=[f"{c}-{u}" for c, u in EVERY_UNIT])
def test_every_accepted_unit_of_every_type_converts(code, unit):
    scale, offset = conversion(metric(code), unit)
    assert scale > 0
    assert scale * 1 + offset == pytest.approx(convert(code, unit.upper(), 1), rel=1e-12)


def test_the_catalog_has_50_types_with_stable_ids():
    assert len(CATALOG) == 50
    ids = {code: row["id"] for code, row in CATALOG.items()}
    assert ids["blood_pressure"] == 1
    assert ids["heart_rate"] == 2
    assert ids["body_temperature"] == 8
    assert ids["blood_glucose"] == 9
    assert ids["body_weight"] == 16
    assert ids["steps"] == 27
    assert ids["sleep_duration"] == 34
    assert ids["water_intake"] == 41


def test_the_catalog_endpoint_lists_50_types(api_client):
    response = api_client.get("/api/v1/health-metrics/metric-types/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 50
    assert len(body["results"]) == 50
    heart_rate = next(t for t in body["results"] if t["code"] == "heart_rate")
    assert heart_rate["id"] == 2
    assert heart_rate["unit"] == "/min"
    assert heart_rate["accepted_units"] == ["bpm", "beats/min", "BPM"]
    assert heart_rate["loinc"] == "8867-4"


def test_the_catalog_endpoint_shows_one_type_by_code(api_client):
    response = api_client.get("/api/v1/health-metrics/metric-types/body_weight/")
    assert response.status_code == 200
    assert response.json()["unit"] == "kg"
    assert response.json()["id"] == 16


# --- through the API --------------------------------------------------------------------------


def test_a_reading_in_pounds_is_stored_in_kilograms_with_the_original_kept(api_client, user):
    response = bearer(api_client, user).post(
        "/api/v1/health-metrics/", reading_body(metric_type="body_weight", value=150, unit="lb"), format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["value"] == 68.0  # 68.0388555 kg, shown at weight's one decimal
    assert body["unit"] == "kg"
    assert body["original_value"] == 150
    assert body["original_unit"] == "lb"
    stored = Reading.objects.get(pk=body["id"])
    assert stored.value == pytest.approx(68.0388555, rel=1e-9)
    assert (stored.original_value, stored.original_unit) == (150, "lb")


def test_a_temperature_in_fahrenheit_is_stored_in_celsius(api_client, user):
    response = bearer(api_client, user).post(
        "/api/v1/health-metrics/", reading_body(metric_type="body_temperature", value=98.6, unit="°F"), format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["value"] == pytest.approx(37.0, rel=1e-9)
    assert response.json()["unit"] == "Cel"


def test_blood_pressure_in_kilopascals_converts_both_components(api_client, user):
    response = bearer(api_client, user).post(
        "/api/v1/health-metrics/",
        reading_body(metric_type="blood_pressure", systolic=16, diastolic=10.5, unit="kPa"),
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["systolic"] == round(16 * KPA_MMHG) == 120  # mmHg, no decimals
    assert body["diastolic"] == round(10.5 * KPA_MMHG) == 79
    stored = Reading.objects.get(pk=body["id"])
    assert (stored.value, stored.secondary_value) == pytest.approx((16 * KPA_MMHG, 10.5 * KPA_MMHG), rel=1e-9)
    assert (body["original_value"], body["original_secondary_value"]) == (16, 10.5)


@pytest.mark.parametrize("unit", ["BPM", "bpm", "/min", "Bpm", "beats/min", " bpm "])
def test_heart_rate_units_are_case_insensitive(api_client, user, unit):
    response = bearer(api_client, user).post(
        "/api/v1/health-metrics/", reading_body(metric_type="heart_rate", value=64, unit=unit), format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["value"] == 64
    assert response.json()["unit"] == "/min"


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("Heart Rate", "heart_rate"),
        ("heart_rate", "heart_rate"),
        ("heart-rate", "heart_rate"),
        ("pulse", "heart_rate"),
        ("HR", "heart_rate"),
        ("Blood Pressure", "blood_pressure"),
        ("bp", "blood_pressure"),
    ],
)
def test_type_labels_and_aliases_resolve_to_the_code(api_client, user, label, code):
    fields = {"value": 70} if code == "heart_rate" else {"systolic": 120, "diastolic": 80}
    response = bearer(api_client, user).post(
        "/api/v1/health-metrics/", reading_body(metric_type=label, **fields), format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["metric_type"] == code
