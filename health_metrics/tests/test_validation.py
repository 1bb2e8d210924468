"""Recording one reading: every refusal with its status, code and field, and what is stored."""

import uuid
from datetime import date, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from conftest import bearer
from health_metrics.models import Reading
from health_metrics.tests.factories import ReadingFactory, set_timezone

pytestmark = pytest.mark.django_db

URL = "/api/v1/health-metrics/"
WHEN = "2026-11-20T08:00:00Z"


def post(client, body):
    return client.post(URL, body, format="json")


def the_error(response) -> dict:
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    return errors[0]


def heart_rate(**fields):
    return {"metric_type": "heart_rate", "value": 72, "recorded_at": WHEN, **fields}


def blood_pressure(**fields):
    return {"metric_type": "blood_pressure", "recorded_at": WHEN, **fields}


# --- type, unit, value ----------------------------------------------------------------------


def test_an_unknown_metric_type_is_400_listing_the_valid_codes(as_user):
    response = post(as_user, heart_rate(metric_type="blood_oxygen_level"))
    assert response.status_code == 400
    error = the_error(response)
    assert error["attr"] == "metric_type"
    assert error["code"] == "invalid_choice"
    assert "heart_rate" in error["detail"]
    assert "blood_pressure" in error["detail"]
    assert not Reading.objects.exists()


def test_a_missing_metric_type_is_400(as_user):
    body = heart_rate()
    del body["metric_type"]
    response = post(as_user, body)
    assert response.status_code == 400
    assert the_error(response)["attr"] == "metric_type"
    assert the_error(response)["code"] == "required"


def test_an_unknown_unit_is_400_listing_the_valid_units(as_user):
    response = post(as_user, heart_rate(unit="Hz"))
    assert response.status_code == 400
    error = the_error(response)
    assert error["attr"] == "unit"
    assert error["code"] == "invalid_choice"
    assert "/min, bpm, beats/min, BPM" in error["detail"]
    assert not Reading.objects.exists()


def test_a_unit_of_another_type_is_400(as_user):
    response = post(as_user, heart_rate(unit="kg"))
    assert response.status_code == 400
    assert the_error(response)["attr"] == "unit"


def test_a_missing_value_is_400(as_user):
    body = heart_rate()
    del body["value"]
    response = post(as_user, body)
    assert response.status_code == 400
    assert the_error(response)["attr"] == "value"
    assert the_error(response)["code"] == "required"


@pytest.mark.parametrize("value", ["72", True, False, [72], {"v": 72}])
def test_a_value_that_is_not_a_json_number_is_400(as_user, value):
    response = post(as_user, heart_rate(value=value))
    assert response.status_code == 400
    assert the_error(response)["attr"] == "value"
    assert the_error(response)["code"] == "invalid"
    assert not Reading.objects.exists()


def test_an_infinite_value_is_400(as_user):
    response = as_user.post(
        URL,
        '{"metric_type": "heart_rate", "value": 1e400, "recorded_at": "2026-11-20T08:00:00Z"}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert the_error(response)["attr"] == "value"


def test_an_integer_too_large_for_a_float_is_400(as_user):
    as_user.raise_request_exception = False
    huge = "1" + "0" * 400
    response = as_user.post(
        URL,
        '{"metric_type": "heart_rate", "value": ' + huge + ', "recorded_at": "2026-11-20T08:00:00Z"}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert the_error(response)["attr"] == "value"


def test_a_heart_rate_of_400_is_out_of_range(as_user):
    response = post(as_user, heart_rate(value=400))
    assert response.status_code == 400
    error = the_error(response)
    assert (error["attr"], error["code"]) == ("value", "out_of_range")
    assert not Reading.objects.exists()


def test_the_range_is_checked_after_conversion(as_user):
    # 2000 lb is 907 kg, above the 500 kg limit.
    response = post(as_user, {"metric_type": "body_weight", "value": 2000, "unit": "lb", "recorded_at": WHEN})
    assert response.status_code == 400
    assert (the_error(response)["attr"], the_error(response)["code"]) == ("value", "out_of_range")
    # 400 lb (181 kg) is within it.
    response = post(as_user, {"metric_type": "body_weight", "value": 400, "unit": "lb", "recorded_at": WHEN})
    assert response.status_code == 201


def test_a_temperature_plausible_only_in_fahrenheit_is_refused_in_celsius(as_user):
    response = post(as_user, {"metric_type": "body_temperature", "value": 98.6, "recorded_at": WHEN})
    assert response.status_code == 400
    assert the_error(response)["code"] == "out_of_range"


def test_an_abnormal_but_plausible_value_is_stored_and_flagged(as_user):
    response = post(as_user, heart_rate(value=150))
    assert response.status_code == 201
    assert response.json()["is_abnormal"] is True
    assert Reading.objects.get().is_abnormal is True


def test_a_normal_value_is_not_flagged(as_user):
    response = post(as_user, heart_rate(value=72))
    assert response.status_code == 201
    assert response.json()["is_abnormal"] is False


def test_zero_is_valid_where_the_range_allows_it(as_user):
    response = post(as_user, {"metric_type": "steps", "value": 0, "recorded_at": WHEN})
    assert response.status_code == 201, response.json()
    assert response.json()["value"] == 0
    assert Reading.objects.get().value == 0


def test_zero_is_refused_where_the_range_does_not_allow_it(as_user):
    response = post(as_user, heart_rate(value=0))
    assert response.status_code == 400
    assert the_error(response)["code"] == "out_of_range"


# --- time -----------------------------------------------------------------------------------


def test_more_than_five_minutes_ahead_is_in_future(as_user):
    ahead = (timezone.now() + timedelta(minutes=6)).isoformat()
    response = post(as_user, heart_rate(recorded_at=ahead))
    assert response.status_code == 400
    error = the_error(response)
    assert (error["attr"], error["code"]) == ("recorded_at", "in_future")
    assert not Reading.objects.exists()


def test_four_minutes_ahead_is_accepted(as_user):
    ahead = (timezone.now() + timedelta(minutes=4)).isoformat()
    response = post(as_user, heart_rate(recorded_at=ahead))
    assert response.status_code == 201, response.json()


def test_a_missing_time_is_400(as_user):
    body = heart_rate()
    del body["recorded_at"]
    response = post(as_user, body)
    assert response.status_code == 400
    assert (the_error(response)["attr"], the_error(response)["code"]) == ("recorded_at", "required")


@pytest.mark.parametrize("recorded_at", ["yesterday", "2026-13-45T10:00:00Z", 1763625600])
def test_a_time_that_is_not_iso_8601_is_400(as_user, recorded_at):
    response = post(as_user, heart_rate(recorded_at=recorded_at))
    assert response.status_code == 400
    assert (the_error(response)["attr"], the_error(response)["code"]) == ("recorded_at", "invalid")


def test_a_time_before_year_one_in_utc_is_400(as_user):
    as_user.raise_request_exception = False
    response = post(as_user, heart_rate(recorded_at="0001-01-01T00:30:00+01:00"))
    assert response.status_code == 400
    assert the_error(response)["attr"] == "recorded_at"


def test_an_end_before_the_start_is_400(as_user):
    response = post(
        as_user,
        {
            "metric_type": "sleep_duration",
            "value": 7,
            "recorded_at": "2026-11-20T23:00:00Z",
            "ended_at": "2026-11-20T22:00:00Z",
        },
    )
    assert response.status_code == 400
    assert (the_error(response)["attr"], the_error(response)["code"]) == ("ended_at", "invalid")


def test_a_time_without_offset_is_in_the_profile_time_zone(as_user, user):
    set_timezone(user, "Europe/Paris")
    response = post(as_user, heart_rate(recorded_at="2026-01-15T08:00:00"))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["utc_offset_minutes"] == 60
    assert body["recorded_at"] == "2026-01-15T07:00:00Z"
    assert body["local_date"] == "2026-01-15"


def test_a_time_without_offset_in_summer_takes_the_summer_offset(as_user, user):
    set_timezone(user, "Europe/Paris")
    response = post(as_user, heart_rate(recorded_at="2026-07-15T00:30:00"))
    assert response.status_code == 201
    assert response.json()["utc_offset_minutes"] == 120
    assert response.json()["recorded_at"] == "2026-07-14T22:30:00Z"
    assert response.json()["local_date"] == "2026-07-15"


def test_an_explicit_offset_is_kept(as_user, user):
    set_timezone(user, "Europe/Paris")
    response = post(as_user, heart_rate(recorded_at="2026-01-15T22:00:00-05:00"))
    assert response.status_code == 201
    body = response.json()
    assert body["utc_offset_minutes"] == -300
    assert body["recorded_at"] == "2026-01-16T03:00:00Z"
    assert body["local_date"] == "2026-01-15"


def test_a_utc_z_time_takes_the_users_offset_for_the_local_day(as_user, user):
    set_timezone(user, "Europe/Paris")
    response = post(as_user, heart_rate(recorded_at="2026-01-15T23:30:00Z"))
    assert response.status_code == 201
    body = response.json()
    assert body["recorded_at"] == "2026-01-15T23:30:00Z"
    assert body["utc_offset_minutes"] == 60
    assert body["local_date"] == "2026-01-16"
    stored = Reading.objects.get()
    assert stored.local_date == date(2026, 1, 16)


# --- blood pressure ---------------------------------------------------------------------------


def test_blood_pressure_shows_systolic_over_diastolic(as_user):
    response = post(as_user, blood_pressure(systolic=120, diastolic=80))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["display_value"] == "120/80"
    assert body["value"] == 120
    assert body["secondary_value"] == 80
    assert (body["systolic"], body["diastolic"]) == (120, 80)
    stored = Reading.objects.get()
    assert (stored.value, stored.secondary_value) == (120, 80)


def test_blood_pressure_accepts_systolic_value_and_diastolic_value(as_user):
    response = post(as_user, blood_pressure(systolic_value=135, diastolic_value=85))
    assert response.status_code == 201, response.json()
    assert response.json()["display_value"] == "135/85"


def test_blood_pressure_above_the_diastolic_threshold_is_abnormal(as_user):
    response = post(as_user, blood_pressure(systolic=130, diastolic=95))
    assert response.status_code == 201
    assert response.json()["is_abnormal"] is True


@pytest.mark.parametrize(("systolic", "diastolic"), [(80, 120), (90, 90)])
def test_systolic_not_above_diastolic_is_400_on_diastolic(as_user, systolic, diastolic):
    response = post(as_user, blood_pressure(systolic=systolic, diastolic=diastolic))
    assert response.status_code == 400
    assert (the_error(response)["attr"], the_error(response)["code"]) == ("diastolic", "invalid")
    assert not Reading.objects.exists()


def test_blood_pressure_without_diastolic_is_400(as_user):
    response = post(as_user, blood_pressure(systolic=120))
    assert response.status_code == 400
    assert (the_error(response)["attr"], the_error(response)["code"]) == ("diastolic", "required")


def test_blood_pressure_without_systolic_is_400(as_user):
    response = post(as_user, blood_pressure(diastolic=80))
    assert response.status_code == 400
    assert (the_error(response)["attr"], the_error(response)["code"]) == ("systolic", "required")


def test_a_diastolic_outside_its_range_is_400(as_user):
    response = post(as_user, blood_pressure(systolic=250, diastolic=210))
    assert response.status_code == 400
    assert (the_error(response)["attr"], the_error(response)["code"]) == ("diastolic", "out_of_range")


@pytest.mark.parametrize("diastolic", [80, 81])
def test_the_database_refuses_systolic_not_above_diastolic(user, diastolic):
    with pytest.raises(IntegrityError), transaction.atomic():
        ReadingFactory(user=user, metric_type_id=1, value=80, secondary_value=diastolic, original_unit="mm[Hg]")
    assert not Reading.objects.exists()


# --- client ids and the body ---------------------------------------------------------------------


def test_a_retried_client_id_answers_200_and_stores_nothing_twice(as_user):
    client_id = str(uuid.uuid4())
    first = post(as_user, heart_rate(client_id=client_id))
    assert first.status_code == 201
    again = post(as_user, heart_rate(client_id=client_id))
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["client_id"] == client_id
    assert Reading.objects.count() == 1


def test_a_retry_with_a_changed_value_keeps_the_first(as_user):
    client_id = str(uuid.uuid4())
    post(as_user, heart_rate(client_id=client_id, value=70))
    again = post(as_user, heart_rate(client_id=client_id, value=99))
    assert again.status_code == 200
    assert again.json()["value"] == 70
    assert list(Reading.objects.values_list("value", flat=True)) == [70]


def test_the_same_client_id_from_two_people_is_two_readings(api_client, user, other_user):
    client_id = str(uuid.uuid4())
    assert post(bearer(api_client, user), heart_rate(client_id=client_id)).status_code == 201
    assert post(bearer(api_client, other_user), heart_rate(client_id=client_id)).status_code == 201
    assert Reading.objects.count() == 2


@pytest.mark.parametrize("client_id", ["not-a-uuid", 12345, "0123456789"])
def test_an_invalid_client_id_is_400(as_user, client_id):
    response = post(as_user, heart_rate(client_id=client_id))
    assert response.status_code == 400
    assert (the_error(response)["attr"], the_error(response)["code"]) == ("client_id", "invalid")
    assert not Reading.objects.exists()


def test_an_unknown_source_is_400(as_user):
    response = post(as_user, heart_rate(source="telepathy"))
    assert response.status_code == 400
    assert (the_error(response)["attr"], the_error(response)["code"]) == ("source", "invalid_choice")


def test_notes_longer_than_2000_characters_are_400(as_user):
    response = post(as_user, heart_rate(notes="x" * 2001))
    assert response.status_code == 400
    assert the_error(response)["attr"] == "notes"
    assert post(as_user, heart_rate(notes="x" * 2000)).status_code == 201


# PostgreSQL text cannot hold U+0000: one in any stored or looked-up string is the reading's error, never a 500.
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("notes", "before\x00after"),
        ("external_id", "ext\x00-1"),
        ("unit", "bp\x00m"),
        ("metric_type", "heart_rate\x00"),
        ("source", "\x00manual"),
        ("recorded_at", WHEN + "\x00"),
        ("ended_at", "\x00" + WHEN),
        ("client_id", str(uuid.UUID(int=1)) + "\x00"),
    ],
)
def test_a_null_character_in_any_text_is_400_naming_the_field(as_user, field, value):
    response = post(as_user, heart_rate(**{field: value}))
    assert response.status_code == 400
    assert the_error(response) == {
        "attr": field,
        "code": "null_character",
        "detail": "Must not contain the null character (U+0000).",
    }
    assert not Reading.objects.exists()


def test_an_edit_with_a_null_character_in_notes_is_400_and_changes_nothing(as_user, user):
    reading = ReadingFactory(user=user, notes="fine")
    response = as_user.patch(f"{URL}{reading.pk}/", {"notes": "not\x00fine"}, format="json")
    assert response.status_code == 400
    assert (the_error(response)["attr"], the_error(response)["code"]) == ("notes", "null_character")
    reading.refresh_from_db()
    assert reading.notes == "fine"


@pytest.mark.parametrize("body", [[heart_rate()], "heart_rate", 72])
def test_a_body_that_is_not_a_json_object_is_400(as_user, body):
    response = post(as_user, body)
    assert response.status_code == 400
    assert the_error(response)["attr"] == "non_field_errors"
    assert not Reading.objects.exists()


def test_a_reading_is_stored_for_the_requesting_user(as_user, user):
    response = post(as_user, heart_rate())
    assert response.status_code == 201
    assert response.json()["patient"] == str(user.pk)
    assert Reading.objects.get().user == user


def test_unauthenticated_recording_is_401(api_client):
    assert post(api_client, heart_rate()).status_code == 401
    assert not Reading.objects.exists()


# --- edits follow the same rules -----------------------------------------------------------------


def test_an_edit_out_of_range_is_400_and_changes_nothing(as_user, user):
    reading = ReadingFactory(user=user, value=70)
    response = as_user.patch(f"{URL}{reading.pk}/", {"value": 400}, format="json")
    assert response.status_code == 400
    assert (the_error(response)["attr"], the_error(response)["code"]) == ("value", "out_of_range")
    reading.refresh_from_db()
    assert reading.value == 70


def test_an_edit_in_another_unit_is_converted(as_user, user):
    reading = ReadingFactory(user=user, metric_type_id=16, value=70, original_unit="kg")
    response = as_user.patch(f"{URL}{reading.pk}/", {"value": 150, "unit": "lb"}, format="json")
    assert response.status_code == 200, response.json()
    reading.refresh_from_db()
    assert reading.value == pytest.approx(68.0388555, rel=1e-9)
    assert (reading.original_value, reading.original_unit) == (150, "lb")


def test_an_edit_of_blood_pressure_keeps_systolic_above_diastolic(as_user, user):
    reading = ReadingFactory(user=user, metric_type_id=1, value=120, secondary_value=80, original_unit="mm[Hg]")
    reading.original_secondary_value = 80
    reading.save()
    response = as_user.patch(f"{URL}{reading.pk}/", {"diastolic": 125}, format="json")
    assert response.status_code == 400
    assert the_error(response)["attr"] == "diastolic"
    response = as_user.patch(f"{URL}{reading.pk}/", {"diastolic": 75}, format="json")
    assert response.status_code == 200
    assert response.json()["display_value"] == "120/75"
