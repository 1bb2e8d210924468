"""The input rules every way in shares (config.inputs), the JSON parser's nesting limit and the renderer."""

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from rest_framework import serializers

from accounts.models import CareTeamGrant
from accounts.tests.factories import ClinicianFactory
from config.inputs import (
    DateField,
    DateTimeField,
    InputError,
    JSONField,
    check_date,
    json_text_error,
    text_error,
    utc_datetime,
)
from config.parsers import nesting_exceeds

LOGIN = "/api/v1/auth/login/"


def nested_array(levels: int) -> str:
    return "[" * levels + "]" * levels


def nested_object(levels: int) -> str:
    return '{"a": ' * (levels - 1) + "{}" + "}" * (levels - 1)


# --- Text ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("plain", None),
        ("ünïcödé 한국어 \U0001f600", None),
        ("a\x00b", "null_character"),
        ("a\ud800b", "surrogate_character"),
        ("\udfff", "surrogate_character"),
        ("ü\udbff", "surrogate_character"),
    ],
)
def test_text_postgresql_cannot_store_is_named_by_its_code(value, code):
    error = text_error(value)
    assert (error.code if error else None) == code


def test_json_text_is_checked_in_values_and_keys_at_any_depth():
    assert json_text_error({"a": [1, {"b": "fine"}], "c": None}) is None
    path, error = json_text_error({"a": [1, {"b": "x\x00"}]})
    assert (path, error.code) == ("a.1.b", "null_character")
    path, error = json_text_error({"a": {"\ud800": 1}})
    assert (path, error.code) == ("a.<key>", "surrogate_character")
    path, error = json_text_error(["\ud800"])
    assert (path, error.code) == ("0", "surrogate_character")


def test_the_json_field_names_where_the_bad_text_is():
    field = JSONField()
    assert field.run_validation({"mode": "eco", "levels": [1, 2]}) == {"mode": "eco", "levels": [1, 2]}
    with pytest.raises(serializers.ValidationError) as raised:
        field.run_validation({"mode": ["eco", "a\x00"]})
    assert raised.value.detail == ["Must not contain the null character (U+0000) (at mode.1)."]
    assert raised.value.detail[0].code == "null_character"


# --- Dates and datetimes ------------------------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-01T08:00:00+15:59", at("2026-02-28T16:01:00+00:00")),
        ("2026-03-01T08:00:00-15:59", at("2026-03-01T23:59:00+00:00")),
        ("1900-01-01T00:00:00+00:00", at("1900-01-01T00:00:00+00:00")),
        ("9998-12-31T23:59:59.999999+00:00", at("9998-12-31T23:59:59.999999+00:00")),
        ("2026-03-01T08:00:00", at("2026-03-01T08:00:00+00:00")),  # naive: taken as UTC
        ("2026-03-01T08:00:00+16:00", "invalid_offset"),
        ("2026-03-01T08:00:00-23:59", "invalid_offset"),
        ("9999-12-31T23:59:59-12:00", "out_of_range"),  # the year 10000 in UTC: Python overflows
        ("0001-01-01T00:00:00+01:00", "out_of_range"),  # the year 0 in UTC
        ("1900-01-01T00:30:00+01:00", "out_of_range"),
        ("9999-01-01T00:00:00+00:00", "out_of_range"),
    ],
)
def test_a_datetime_must_hold_in_postgresql_and_python(value, expected):
    try:
        result = utc_datetime(at(value))
    except InputError as error:
        result = error.code
    assert result == expected
    if isinstance(expected, datetime):
        assert result.tzinfo is UTC


def test_a_given_offset_is_the_one_checked():
    moment = datetime(2026, 3, 1, 8, tzinfo=timezone(timedelta(hours=18)))
    with pytest.raises(InputError):
        utc_datetime(moment, moment.utcoffset())
    assert utc_datetime(moment.replace(tzinfo=UTC), timedelta(0)) == moment.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "ok"),
    [(date(1900, 1, 1), True), (date(9998, 12, 31), True), (date(1899, 12, 31), False), (date(9999, 1, 1), False)],
)
def test_a_date_must_leave_room_for_a_periods_arithmetic(value, ok):
    if ok:
        assert check_date(value) == value
    else:
        with pytest.raises(InputError):
            check_date(value)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("2026-03-01T08:00:00+18:00", "invalid_offset"),
        ("9999-12-31T23:59:59-12:00", "out_of_range"),
        ("9999-12-31T23:59:59", "out_of_range"),
        ("1899-12-31T23:59:59Z", "out_of_range"),
    ],
)
def test_the_datetime_field_refuses_what_drf_would_convert_or_overflow(value, code):
    with pytest.raises(serializers.ValidationError) as raised:
        DateTimeField().run_validation(value)
    assert raised.value.detail[0].code == code


def test_the_datetime_field_answers_utc_for_an_offset_within_range():
    assert DateTimeField().run_validation("2026-03-01T08:00:00+15:59") == at("2026-02-28T16:01:00+00:00")


def test_the_date_field_refuses_dates_out_of_range():
    assert DateField().run_validation("9998-12-31") == date(9998, 12, 31)
    with pytest.raises(serializers.ValidationError) as raised:
        DateField().run_validation("0001-01-01")
    assert raised.value.detail[0].code == "out_of_range"


@pytest.mark.django_db
def test_a_grant_that_expires_at_an_impossible_time_is_400_and_not_stored(as_user):
    clinician = ClinicianFactory()
    body = {"clinician_email": clinician.email, "scopes": ["metrics"], "expires_at": "2027-01-01T00:00:00+18:00"}

    response = as_user.post("/api/v1/care-team/", body, format="json")

    assert response.status_code == 400
    assert [(e["attr"], e["code"]) for e in response.json()["errors"]] == [("expires_at", "invalid_offset")]
    assert not CareTeamGrant.objects.filter(clinician=clinician).exists()


# --- The parser's nesting limit -----------------------------------------------------------------------------


def test_nesting_is_measured_without_recursion():
    assert not nesting_exceeds(1, 0)
    assert nesting_exceeds({}, 0)
    assert not nesting_exceeds(json.loads(nested_array(64)), 64)
    assert nesting_exceeds(json.loads(nested_array(65)), 64)
    assert not nesting_exceeds({"readings": [{"a": 1}] * 3}, 3)
    assert nesting_exceeds({"readings": [{"a": 1}, {"a": [1]}]}, 3)
    deep: list = []
    for _ in range(100_000):  # far deeper than anything recursive could walk
        deep = [deep]
    assert nesting_exceeds(deep, 64)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "attr"),
    [
        (nested_array(1000), "non_field_errors"),  # json.loads itself would raise RecursionError
        (nested_array(65), "non_field_errors"),
        ('{"email": ' + nested_array(1000) + "}", "email"),
        ('{"email": "a@example.org", "password": ' + nested_object(900) + "}", "password"),
        ('{"email": ' + nested_object(64) + "}", "email"),  # 64 levels under the body's own object: 65
    ],
)
def test_a_body_nested_too_deep_is_400_naming_the_field_it_is_under(api_client, body, attr):
    response = api_client.post(LOGIN, data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"code": "too_deep", "detail": "JSON nested deeper than 64 levels is not accepted.", "attr": attr}
    ]


@pytest.mark.django_db
def test_a_body_nested_to_the_limit_is_parsed(api_client):
    body = '{"email": ' + nested_object(63) + ', "password": "x"}'  # 64 levels with the body's own object

    response = api_client.post(LOGIN, data=body, content_type="application/json")

    assert response.status_code == 400
    assert [(e["attr"], e["code"]) for e in response.json()["errors"]] == [("email", "invalid")]


@pytest.mark.django_db
def test_the_limit_is_a_setting(api_client, settings):
    settings.API_MAX_JSON_DEPTH = 3
    body = '{"email": [[[1]]], "password": "x"}'  # 4 levels with the body's own object

    response = api_client.post(LOGIN, data=body, content_type="application/json")

    assert [(e["attr"], e["code"]) for e in response.json()["errors"]] == [("email", "too_deep")]


# --- The renderer ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_error_quoting_a_lone_surrogate_is_rendered_escaped(as_user):
    response = as_user.post(
        "/api/v1/iot-devices/",
        data='{"name": "Watch", "device_type": "\\ud800"}',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert b"\\ud800" in response.content  # written as JSON's escape: UTF-8 has no form for it
    error = response.json()["errors"][0]
    assert (error["attr"], error["code"], error["detail"]) == (
        "device_type",
        "invalid_choice",
        '"\ud800" is not a valid choice. Valid choices: smartwatch, fitness_tracker, blood_pressure_monitor, '
        "glucose_meter, scale, thermometer, pulse_oximeter, ecg_monitor, sleep_tracker, other.",
    )
