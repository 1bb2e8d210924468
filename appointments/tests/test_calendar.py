"""The iCalendar feed: parsed with `icalendar`, under a hashed, rotatable token that never reaches the logs."""

import hashlib
import logging
from datetime import UTC, timedelta

import pytest
from django.test import override_settings
from icalendar import Calendar
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from appointments.models import AppointmentStatus, CalendarFeed
from appointments.services import change_status
from appointments.tests.factories import AppointmentFactory, a_slot
from conftest import bearer

pytestmark = pytest.mark.django_db

S = AppointmentStatus
FEED = "/api/v1/appointments/calendar.ics"


def new_token(user) -> tuple[str, str]:  # noqa: ANN001
    response = bearer(APIClient(), user).post("/api/v1/appointments/calendar-token/")
    assert response.status_code == 201, response.content
    body = response.json()
    return body["token"], body["url"]


def parsed(response) -> Calendar:  # noqa: ANN001
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/calendar")
    return Calendar.from_ical(response.content)


def events_by_uid(calendar: Calendar) -> dict:
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


def test_the_feed_is_a_valid_calendar_with_one_event_per_appointment():
    appointment = AppointmentFactory(
        starts_at=a_slot(days=2), reason="secret-reason", diagnosis="secret-diagnosis", notes="secret-notes"
    )
    appointment.provider.first_name, appointment.provider.last_name = "Ada", "Lovelace"
    appointment.provider.save()
    token, url = new_token(appointment.patient)

    response = APIClient().get(FEED, {"token": token})  # no JWT: the token is the credential

    calendar = parsed(response)
    assert url.endswith(f"{FEED}?token={token}")
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"]) == "-//OpenVitals//Appointments//EN"
    assert calendar["REFRESH-INTERVAL"].dt == timedelta(hours=1)
    assert calendar["REFRESH-INTERVAL"].params["VALUE"] == "DURATION"
    assert calendar["X-PUBLISHED-TTL"].dt == timedelta(hours=1)
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"{appointment.pk}@openvitals"
    assert event["SEQUENCE"] == 0
    assert event["DTSTART"].dt == appointment.starts_at.astimezone(UTC)
    assert event["DTEND"].dt == appointment.ends_at.astimezone(UTC)
    assert event["DTSTART"].dt.tzinfo is not None
    assert event["DTSTART"].dt.utcoffset() == timedelta(0)
    assert "DTSTAMP" in event
    assert str(event["SUMMARY"]) == "Appointment with Dr Ada Lovelace"
    assert str(event["URL"]).endswith(f"/appointments/{appointment.pk}")
    assert str(event["STATUS"]) == "TENTATIVE"
    assert b"secret" not in response.content
    assert b"Consultation" not in response.content  # the type can say as much as a diagnosis


def test_a_status_change_bumps_the_sequence_and_a_cancelled_visit_stays_as_cancelled():
    appointment = AppointmentFactory(starts_at=a_slot(days=3))
    token, _ = new_token(appointment.patient)
    change_status(appointment=appointment, action="confirm", actor=appointment.provider)
    change_status(appointment=appointment, action="cancel", actor=appointment.provider)

    event = events_by_uid(parsed(APIClient().get(FEED, {"token": token})))[f"{appointment.pk}@openvitals"]

    assert event["SEQUENCE"] == 2
    assert str(event["STATUS"]) == "CANCELLED"


def test_the_providers_feed_does_not_name_the_patient():
    appointment = AppointmentFactory(starts_at=a_slot(days=2))
    token, _ = new_token(appointment.provider)

    response = APIClient().get(FEED, {"token": token})

    (event,) = parsed(response).walk("VEVENT")
    assert str(event["SUMMARY"]) == "OpenVitals appointment"
    assert appointment.patient.last_name.encode() not in response.content
    assert appointment.patient.email.encode() not in response.content


def test_the_feed_shows_only_the_token_owners_appointments():
    mine = AppointmentFactory(starts_at=a_slot(days=2))
    theirs = AppointmentFactory(starts_at=a_slot(days=2))
    token, _ = new_token(mine.patient)

    uids = set(events_by_uid(parsed(APIClient().get(FEED, {"token": token}))))

    assert uids == {f"{mine.pk}@openvitals"}
    assert f"{theirs.pk}@openvitals" not in uids


def test_the_token_is_stored_only_as_its_sha256():
    user = UserFactory()
    token, _ = new_token(user)

    feed = CalendarFeed.objects.get(user=user)

    assert feed.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(CalendarFeed.objects.filter(user=user).values().get())


def test_rotating_the_token_refuses_the_old_one():
    appointment = AppointmentFactory(starts_at=a_slot(days=2))
    old, _ = new_token(appointment.patient)
    new, _ = new_token(appointment.patient)

    assert old != new
    assert APIClient().get(FEED, {"token": old}).status_code == 404
    assert APIClient().get(FEED, {"token": new}).status_code == 200
    assert CalendarFeed.objects.filter(user=appointment.patient).count() == 1


@pytest.mark.parametrize("query", [{}, {"token": ""}, {"token": "not-a-token"}])
def test_a_missing_or_wrong_token_is_404_in_the_error_shape(query):
    response = APIClient().get(FEED, query)

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_a_calendar_apps_accept_header_does_not_get_a_406():
    appointment = AppointmentFactory(starts_at=a_slot(days=2))
    token, _ = new_token(appointment.patient)

    response = APIClient().get(FEED, {"token": token}, HTTP_ACCEPT="text/calendar")

    assert response.status_code == 200


def test_a_deactivated_users_feed_is_404():
    user = UserFactory()
    token, _ = new_token(user)
    user.is_active = False
    user.save()

    assert APIClient().get(FEED, {"token": token}).status_code == 404


def test_making_a_token_needs_a_login():
    assert APIClient().post("/api/v1/appointments/calendar-token/").status_code == 401


@override_settings(APPOINTMENT_CALENDAR_PAST_DAYS=30)
def test_the_feed_reaches_back_as_far_as_the_setting_says():
    recent = AppointmentFactory(starts_at=a_slot(days=-29), status=S.COMPLETED)
    old = AppointmentFactory(patient=recent.patient, starts_at=a_slot(days=-40), status=S.COMPLETED)
    token, _ = new_token(recent.patient)

    uids = set(events_by_uid(parsed(APIClient().get(FEED, {"token": token}))))

    assert uids == {f"{recent.pk}@openvitals"}
    assert f"{old.pk}@openvitals" not in uids


def test_the_token_never_reaches_the_logs(caplog, capsys):
    appointment = AppointmentFactory(starts_at=a_slot(days=2))
    token, _ = new_token(appointment.patient)
    caplog.clear()
    capsys.readouterr()

    with caplog.at_level(logging.DEBUG):
        assert APIClient().get(f"{FEED}?token={token}").status_code == 200
        assert APIClient().get(f"{FEED}?token={token}x").status_code == 404

    records = " ".join(f"{record.getMessage()} {record.msg}" for record in caplog.records)
    written = capsys.readouterr()
    assert "request_finished" in records  # the request was logged ...
    assert "token=[redacted]" in records  # ... with its token replaced
    assert token not in records
    assert token not in written.out + written.err
