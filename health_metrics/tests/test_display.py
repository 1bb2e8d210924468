"""Numbers people can read: rounding to the catalog's precision, unit labels, and display fields in the reader's
units (profile, per-type choices, `?units=`), with the canonical values still there."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import CareTeamGrantFactory
from conftest import bearer
from health_metrics.alerts import check_anomalies
from health_metrics.catalog import get_catalog
from health_metrics.display import IMPERIAL, Units, display_choices, format_value, round_value
from health_metrics.models import MetricType
from health_metrics.tests.factories import ReadingFactory, TargetFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/health-metrics/"
WEIGHT, TEMPERATURE, GLUCOSE, BLOOD_PRESSURE, HEART_RATE = 16, 8, 9, 1, 2
UNIT_FIELDS = ("unit", "unit_label", "display_unit", "display_unit_label")


def prefer(user, system="metric", **per_type):
    user.profile.preferred_units = system
    user.profile.unit_preferences = per_type
    user.profile.save(update_fields=["preferred_units", "unit_preferences"])


def reading(user, type_id, value, secondary=None, unit="", hours_ago=1):
    at = timezone.now() - timedelta(hours=hours_ago)
    return ReadingFactory(
        user=user,
        metric_type_id=type_id,
        value=value,
        secondary_value=secondary,
        original_unit=unit or MetricType.objects.get(pk=type_id).unit,
        recorded_at=at,
        local_date=at.date(),
    )


def first_result(client, **query):
    response = client.get(URL, query)
    assert response.status_code == 200, response.json()
    return response.json()["results"][0]


# --- The rule and the catalog ----------------------------------------------------------------------------


def test_rounding_is_half_up_on_the_decimal_text():
    assert round_value(72.5, 0) == 73  # round() would say 72
    assert round_value(2.675, 2) == 2.68  # round() on the binary float would say 2.67
    assert round_value(74.84274105000001, 1) == 74.8
    assert round_value(-0.25, 1) == -0.3
    assert round_value(None, 1) is None
    assert format_value(-0.04, 1) == "0.0"  # never "-0.0"


def test_whole_number_precision_answers_integers_and_text_keeps_its_decimals():
    assert isinstance(round_value(71.6, 0), int)
    assert format_value(98.6, 1) == "98.6"
    assert format_value(165.0, 1) == "165.0"
    assert format_value(71.5, 0) == "72"


def test_every_catalog_type_states_a_precision_and_label_and_its_display_units_convert():
    types = list(MetricType.objects.all())
    assert len(types) == 50
    for metric_type in types:
        assert metric_type.unit_label, metric_type.code
        assert 0 <= metric_type.precision <= 3, metric_type.code
        choices = display_choices(metric_type)  # pint resolves every imperial and other display unit
        assert choices[0].unit == metric_type.unit
        assert all(choice.label for choice in choices), metric_type.code
    labels = {t.code: t.unit_label for t in types}
    assert (labels["blood_pressure"], labels["body_temperature"], labels["steps"], labels["heart_rate"]) == (
        "mmHg",
        "°C",
        "steps",
        "bpm",
    )
    glucose = MetricType.objects.get(code="blood_glucose")
    assert glucose.precision == 0
    assert [(c.unit, c.precision) for c in display_choices(glucose)] == [("mg/dL", 0), ("mmol/L", 1)]


def test_imperial_units_convert_weight_temperature_height_and_distance():
    catalog = get_catalog()
    units = Units(system=IMPERIAL)
    weight = units.of(catalog.resolve("body_weight")).shown
    assert (weight.unit, weight.label, weight.value(74.84274105000001)) == ("[lb_av]", "lb", 165.0)
    temperature = units.of(catalog.resolve("body_temperature")).shown
    assert (temperature.unit, temperature.label, temperature.text(37.0)) == ("[degF]", "°F", "98.6")
    assert temperature.rate(1.0) == 1.8  # a change per day scales, never shifts by 32
    height = units.of(catalog.resolve("body_height")).shown
    assert (height.label, height.value(180.0)) == ("in", 70.9)
    distance = units.of(catalog.resolve("distance_walking_running")).shown
    assert (distance.label, distance.value(5000)) == ("mi", 3.11)
    pressure = units.of(catalog.resolve("blood_pressure")).shown
    assert pressure.text(120.4, 79.6) == "120/80"  # no imperial unit of its own: stays mmHg


# --- Readings ------------------------------------------------------------------------------------------


def test_a_reading_answers_its_rounded_canonical_value_with_labels(as_user, user):
    reading(user, WEIGHT, 74.84274105000001)
    body = first_result(as_user)
    assert (body["value"], body["unit"], body["unit_label"]) == (74.8, "kg", "kg")
    assert (body["display_value"], body["display_unit"], body["display_unit_label"]) == ("74.8", "kg", "kg")
    assert body["original_value"] == 74.84274105000001  # what was sent, as it was sent


def test_an_imperial_reader_sees_pounds_and_fahrenheit_beside_the_canonical_values(as_user, user):
    prefer(user, "imperial")
    reading(user, WEIGHT, 74.84274105000001, hours_ago=2)
    reading(user, TEMPERATURE, 37.0)
    temperature, weight = as_user.get(URL).json()["results"]
    assert (weight["value"], weight["unit"]) == (74.8, "kg")
    assert (weight["display_value"], weight["display_unit"], weight["display_unit_label"]) == ("165.0", "[lb_av]", "lb")
    assert (temperature["value"], temperature["unit"], temperature["unit_label"]) == (37.0, "Cel", "°C")
    assert (temperature["display_value"], temperature["display_unit_label"]) == ("98.6", "°F")


def test_a_per_type_choice_shows_glucose_in_mmol_per_litre(as_user, user):
    prefer(user, "metric", blood_glucose="mmol/L")
    reading(user, GLUCOSE, 104.0, hours_ago=2)
    reading(user, WEIGHT, 80.0)
    weight, glucose = as_user.get(URL).json()["results"]
    assert (glucose["value"], glucose["unit"]) == (104, "mg/dL")
    assert (glucose["display_value"], glucose["display_unit"]) == ("5.8", "mmol/L")  # 104 / 18.016 = 5.77
    assert weight["display_unit"] == "kg"  # other types follow the system


def test_blood_pressure_reads_120_over_80_in_every_system(as_user, user):
    prefer(user, "imperial")
    reading(user, BLOOD_PRESSURE, 120.4, 79.6)
    body = first_result(as_user)
    assert (body["systolic"], body["diastolic"], body["display_value"]) == (120, 80, "120/80")
    assert (body["unit"], body["unit_label"], body["display_unit_label"]) == ("mm[Hg]", "mmHg", "mmHg")


def test_units_in_the_query_override_the_profile(as_user, user):
    prefer(user, "imperial", blood_glucose="mmol/L")
    reading(user, WEIGHT, 80.0, hours_ago=2)
    reading(user, GLUCOSE, 104.0)
    glucose, weight = as_user.get(URL, {"units": "metric"}).json()["results"]
    assert (weight["display_value"], weight["display_unit"]) == ("80.0", "kg")
    assert (glucose["display_value"], glucose["display_unit"]) == ("104", "mg/dL")
    prefer(user, "metric")
    weight = as_user.get(URL, {"units": "imperial", "metric_type": "weight"}).json()["results"][0]
    assert (weight["display_value"], weight["display_unit_label"]) == ("176.4", "lb")


def test_create_and_update_answer_in_the_readers_units(as_user, user):
    prefer(user, "imperial")
    response = as_user.post(
        URL,
        {"metric_type": "weight", "value": 150, "unit": "lb", "recorded_at": timezone.now().isoformat()},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["value"], body["unit"], body["display_value"], body["display_unit_label"]) == (
        68.0,
        "kg",
        "150.0",
        "lb",
    )
    patched = as_user.patch(f"{URL}{body['id']}/?units=metric", {"value": 151, "unit": "lb"}, format="json")
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["value"], patched.json()["display_value"]) == (68.5, "68.5")


UNKNOWN_UNITS_PATHS = [
    URL,
    f"{URL}stats/",
    f"{URL}summary/?metric_type=heart_rate",
    f"{URL}trends/?metric_type=heart_rate",
    f"{URL}targets/",
    f"{URL}alerts/",
    "/api/v1/patients/",
]


@pytest.mark.parametrize("path", UNKNOWN_UNITS_PATHS)
def test_an_unknown_units_value_is_400_naming_the_choices(as_user, path):
    joiner = "&" if "?" in path else "?"
    response = as_user.get(f"{path}{joiner}units=furlongs")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "validation_error"
    (error,) = body["errors"]
    assert (error["attr"], error["code"]) == ("units", "invalid_choice")
    assert "metric" in error["detail"]
    assert "imperial" in error["detail"]


def test_the_readings_list_stays_constant_in_queries_with_display_fields(as_user, user):
    prefer(user, "imperial", blood_glucose="mmol/L")
    for index, type_id in enumerate([WEIGHT, TEMPERATURE, GLUCOSE, HEART_RATE] * 30):
        reading(user, type_id, 40.0 + index / 7, hours_ago=index + 1)

    def count(size: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = as_user.get(URL, {"page_size": size})
        assert response.status_code == 200
        assert len(response.json()["results"]) == size
        return len(captured)

    ten, hundred = count(10), count(100)
    assert ten == hundred
    prefer(user, "metric")
    assert count(100) == hundred  # the profile comes with the token's session: no query of its own


# --- Summaries, trends, stats, targets, alerts ---------------------------------------------------------


def test_the_summary_rounds_and_shows_the_figures_in_the_readers_units(
    as_user, user, django_capture_on_commit_callbacks
):
    prefer(user, "imperial")
    with django_capture_on_commit_callbacks(execute=True):
        for value in (74.84, 74.91, 75.03):
            response = as_user.post(
                URL,
                {
                    "metric_type": "weight",
                    "value": value,
                    "recorded_at": (timezone.now() - timedelta(minutes=int(value * 10) % 50 + 1)).isoformat(),
                },
                format="json",
            )
            assert response.status_code == 201, response.json()
    body = as_user.get(f"{URL}summary/", {"metric_type": "weight"}).json()
    assert {k: body[k] for k in UNIT_FIELDS} == {
        "unit": "kg",
        "unit_label": "kg",
        "display_unit": "[lb_av]",
        "display_unit_label": "lb",
    }
    (bucket,) = body["buckets"]
    assert (bucket["min"], bucket["max"], bucket["mean"], bucket["median"]) == (74.8, 75.0, 74.9, 74.9)
    assert (bucket["display"]["min"], bucket["display"]["max"]) == (165.0, 165.4)


def test_trends_round_and_convert_the_slope_without_the_offset(as_user, user):
    prefer(user, "imperial")
    for day in range(5):
        reading(user, TEMPERATURE, 36.5 + 0.1 * day, hours_ago=24 * (4 - day) + 1)
    body = as_user.get(f"{URL}trends/", {"metric_type": "temperature", "days": 7}).json()
    assert (body["unit_label"], body["display_unit_label"]) == ("°C", "°F")
    assert body["current_mean"] == 36.7
    assert body["display"]["current_mean"] == 98.1  # 36.7 °C
    assert body["slope_per_day"] == pytest.approx(0.1)
    assert body["display"]["slope_per_day"] == pytest.approx(0.18)


def test_stats_carry_labels_and_display_figures(as_user, user):
    prefer(user, "metric", blood_glucose="mmol/L")
    reading(user, GLUCOSE, 99.0, hours_ago=3)
    reading(user, GLUCOSE, 110.5, hours_ago=2)
    (glucose,) = as_user.get(f"{URL}stats/").json()
    assert (glucose["unit"], glucose["unit_label"], glucose["display_unit"]) == ("mg/dL", "mg/dL", "mmol/L")
    assert (glucose["mean"], glucose["min"], glucose["max"]) == (105, 99, 111)
    assert glucose["display"] == {"mean": 5.8, "min": 5.5, "max": 6.1}
    assert (glucose["latest"]["value"], glucose["latest"]["display_value"]) == (111, "6.1")


def test_targets_answer_rounded_values_labels_and_display_values(as_user, user):
    prefer(user, "imperial")
    TargetFactory(user=user, metric_type_id=WEIGHT, kind="at_most", target_value=68.0388555)
    reading(user, WEIGHT, 70.04)
    (target,) = as_user.get(f"{URL}targets/").json()["results"]
    assert (target["target_value"], target["unit"], target["unit_label"]) == (68.0, "kg", "kg")
    assert (target["display_unit"], target["display_unit_label"]) == ("[lb_av]", "lb")
    assert target["display"] == {"target_value": 150.0, "target_min": None, "target_max": None, "current": 154.4}
    assert target["progress"]["current"] == 70.0
    assert target["progress"]["percent"] == 97.1


def test_alerts_answer_a_rounded_value_and_a_message_with_the_label(as_user, user):
    prefer(user, "metric", blood_glucose="mmol/L")
    at = timezone.now() - timedelta(minutes=30)
    ReadingFactory(user=user, metric_type_id=GLUCOSE, value=45.0389, recorded_at=at, local_date=at.date())
    check_anomalies(user_id=user.pk, days={(GLUCOSE, at.date())})
    (alert,) = as_user.get(f"{URL}alerts/").json()["results"]
    assert (alert["value"], alert["unit"], alert["unit_label"]) == (45, "mg/dL", "mg/dL")
    assert (alert["display_value"], alert["display_unit"]) == ("2.5", "mmol/L")
    assert "lowest 45 mg/dL" in alert["message"]


def test_a_clinician_reads_a_patients_vitals_in_the_clinicians_own_units(api_client, user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician)
    prefer(user, "metric")
    prefer(clinician, "imperial")
    reading(user, WEIGHT, 80.0)
    body = bearer(api_client, clinician).get(f"/api/v1/patients/{user.pk}/").json()
    (weight,) = body["latest_vitals"]
    assert (weight["value"], weight["unit_label"]) == (80.0, "kg")
    assert (weight["display_value"], weight["display_unit_label"]) == ("176.4", "lb")
    listed = bearer(APIClient(), clinician).get(f"{URL}?patient={user.pk}").json()["results"][0]
    assert listed["display_unit_label"] == "lb"


def test_fhir_quantities_are_rounded_with_the_human_label_and_the_ucum_code(as_user, user):
    weight = reading(user, WEIGHT, 74.84274105000001, hours_ago=2)
    temperature = reading(user, TEMPERATURE, 36.94)
    quantities = {}
    for item in (weight, temperature):
        response = as_user.get(f"/fhir/r4/Observation/{item.pk}")
        assert response.status_code == 200
        quantities[item.metric_type_id] = response.json()["valueQuantity"]
    assert quantities[WEIGHT] == {"value": 74.8, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    assert quantities[TEMPERATURE] == {
        "value": 36.9,
        "unit": "°C",
        "system": "http://unitsofmeasure.org",
        "code": "Cel",
    }


# --- Preferences -----------------------------------------------------------------------------------------


def test_a_profile_sets_per_type_units_by_label_in_any_case(as_user, user):
    response = as_user.patch(
        "/api/v1/auth/profile/", {"profile": {"unit_preferences": {"Blood Sugar": "MMOL/L", "weight": "lb"}}}
    )
    assert response.status_code == 200, response.json()
    assert response.json()["profile"]["unit_preferences"] == {"blood_glucose": "mmol/L", "body_weight": "[lb_av]"}
    user.profile.refresh_from_db()
    assert user.profile.unit_preferences == {"blood_glucose": "mmol/L", "body_weight": "[lb_av]"}


@pytest.mark.parametrize(
    ("preferences", "named"),
    [
        ({"blood_glucose": "mmol/mol"}, ["mg/dL", "mmol/L"]),
        ({"body_weight": "stone"}, ["kg", "[lb_av]"]),
        ({"no_such_type": "kg"}, ["no_such_type"]),
    ],
)
def test_a_unit_a_type_cannot_be_shown_in_is_400_naming_the_choices(as_user, user, preferences, named):
    response = as_user.patch("/api/v1/auth/profile/", {"profile": {"unit_preferences": preferences}})
    assert response.status_code == 400, response.json()
    (error,) = response.json()["errors"]
    assert error["attr"].endswith("unit_preferences")
    for text in named:
        assert text in error["detail"]
    user.profile.refresh_from_db()
    assert user.profile.unit_preferences == {}


def test_the_catalog_and_alert_rules_state_labels_and_display_units(as_user):
    glucose = as_user.get(f"{URL}metric-types/blood_glucose/").json()
    assert (glucose["precision"], glucose["unit_label"], glucose["imperial_unit"]) == (0, "mg/dL", "")
    assert glucose["display_units"] == [{"unit": "mmol/L", "label": "mmol/L", "precision": 1}]
    weight = as_user.get(f"{URL}metric-types/body_weight/").json()
    assert (weight["imperial_unit"], weight["imperial_unit_label"], weight["imperial_precision"]) == (
        "[lb_av]",
        "lb",
        1,
    )
    rules = {r["metric_type"]: r for r in as_user.get(f"{URL}alert-rules/defaults/").json()}
    assert (rules["heart_rate"]["unit"], rules["heart_rate"]["unit_label"]) == ("/min", "bpm")


def test_a_value_past_floats_whole_number_precision_is_shown_not_refused():
    """Found by `make fuzz`: a target of 1e300 made Decimal's quantize raise InvalidOperation (500)."""
    from health_metrics.display import rounded_pair

    assert rounded_pair(1e300, 0)[0] == int(1e300)
    assert rounded_pair(-1e20, 1) == (-1e20, f"{-1e20:.1f}")
    assert rounded_pair(123456789012345.67, 1) == (123456789012345.7, "123456789012345.7")


def test_a_huge_target_answers_201(as_user):
    response = as_user.post(
        "/api/v1/health-metrics/targets/",
        {"metric_type": "steps", "kind": "at_least", "target_value": 1e300},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["target_value"] == int(1e300)
