"""Reminders sent once, expired requests, no-shows: the beat jobs with `now` passed in (appointments/reminders.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from appointments import tasks
from appointments.models import Appointment, AppointmentEvent, AppointmentStatus, Reminder
from appointments.reminders import due_offsets, expire_requests, mark_no_shows, send_due_reminders
from appointments.tests.factories import AppointmentFactory
from notifications.models import Notification

S = AppointmentStatus
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def confirmed(starts_in: timedelta, *, booked_before: timedelta = timedelta(days=7), **kwargs):  # noqa: ANN201
    appointment = AppointmentFactory(status=S.CONFIRMED, starts_at=NOW + starts_in, **kwargs)
    type(appointment).objects.filter(pk=appointment.pk).update(created_at=NOW - booked_before)
    appointment.refresh_from_db()
    return appointment


def reminders_of(appointment) -> list:  # noqa: ANN001
    return list(
        Notification.objects.filter(
            kind="appointment_reminder", dedupe_key__startswith=f"appointment:{appointment.pk}:"
        )
        .order_by("created_at")
        .values_list("recipient_id", "dedupe_key")
    )


# --- The pure core ------------------------------------------------------------------------------------------------


def test_an_offset_is_due_from_its_moment_until_the_start():
    start = NOW + timedelta(minutes=30)
    booked = NOW - timedelta(days=3)

    assert due_offsets(starts_at=start, booked_at=booked, now=NOW, offsets=[1440, 60], claimed=[1440]) == (60, [])
    assert due_offsets(starts_at=start, booked_at=booked, now=NOW, offsets=[1440, 60], claimed=[1440, 60]) == (None, [])
    assert due_offsets(starts_at=start, booked_at=booked, now=start, offsets=[60], claimed=[]) == (None, [])


def test_when_several_offsets_are_due_only_the_shortest_is_sent():
    start = NOW + timedelta(minutes=30)

    send, skip = due_offsets(
        starts_at=start, booked_at=NOW - timedelta(days=3), now=NOW, offsets=[1440, 60, 120], claimed=[]
    )

    assert (send, skip) == (60, [120, 1440])


def test_an_offset_whose_moment_came_before_the_booking_is_not_due():
    start = NOW + timedelta(hours=20)

    assert due_offsets(starts_at=start, booked_at=NOW - timedelta(hours=1), now=NOW, offsets=[1440], claimed=[]) == (
        None,
        [],
    )


# --- The job, against the database --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_reminder_is_sent_once_when_the_job_runs_twice():
    appointment = confirmed(timedelta(hours=23))

    first = send_due_reminders(now=NOW)
    second = send_due_reminders(now=NOW + timedelta(minutes=1))

    assert (first, second) == (1, 0)
    assert reminders_of(appointment) == [(appointment.patient_id, f"appointment:{appointment.pk}:reminder:1440")]
    assert list(Reminder.objects.values_list("appointment_id", "offset_minutes", "skipped")) == [
        (appointment.pk, 1440, False)
    ]


@pytest.mark.django_db
def test_each_offset_is_sent_once_at_its_own_time():
    appointment = confirmed(timedelta(hours=23))

    runs = [send_due_reminders(now=NOW + timedelta(minutes=m)) for m in (0, 1, 23 * 60 - 60, 23 * 60 - 59, 23 * 60 - 1)]

    assert runs == [1, 0, 1, 0, 0]
    assert reminders_of(appointment) == [
        (appointment.patient_id, f"appointment:{appointment.pk}:reminder:1440"),
        (appointment.patient_id, f"appointment:{appointment.pk}:reminder:60"),
    ]


@pytest.mark.django_db
def test_a_second_job_that_read_the_same_appointments_sends_nothing():
    """Two overlapping beats: both found the appointment due; the row the first inserted refuses the second."""
    from appointments.reminders import claim_and_send

    appointment = confirmed(timedelta(minutes=50))

    assert claim_and_send(appointment=appointment, offset=60, now=NOW) is True
    assert claim_and_send(appointment=appointment, offset=60, now=NOW) is False
    assert len(reminders_of(appointment)) == 1


@pytest.mark.django_db
def test_an_appointment_cancelled_after_the_job_read_it_gets_no_reminder():
    """The job read it confirmed; it was cancelled before the claim: the claim sees the cancellation."""
    from appointments.reminders import claim_and_send

    appointment = confirmed(timedelta(minutes=50))
    Appointment.objects.filter(pk=appointment.pk).update(status="cancelled")

    assert claim_and_send(appointment=appointment, offset=60, now=NOW) is False
    assert reminders_of(appointment) == []


@pytest.mark.django_db
def test_the_task_runs_the_job(settings):
    settings.APPOINTMENT_REMINDER_OFFSETS_MINUTES = [60]
    appointment = AppointmentFactory(status=S.CONFIRMED, starts_at=datetime.now(UTC) + timedelta(minutes=30))
    type(appointment).objects.filter(pk=appointment.pk).update(created_at=datetime.now(UTC) - timedelta(days=1))

    assert tasks.send_due_appointment_reminders_task.delay().get() == 1
    assert tasks.send_due_appointment_reminders_task.delay().get() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("status", [S.REQUESTED, S.CANCELLED, S.RESCHEDULED, S.CHECKED_IN, S.NO_SHOW])
def test_only_confirmed_appointments_get_reminders(status):
    appointment = confirmed(timedelta(minutes=30))
    type(appointment).objects.filter(pk=appointment.pk).update(status=status)

    assert send_due_reminders(now=NOW) == 0
    assert reminders_of(appointment) == []


@pytest.mark.django_db
def test_the_reminder_text_names_neither_the_reason_nor_the_diagnosis_nor_the_provider():
    appointment = confirmed(timedelta(minutes=45), reason="chest pain secret", diagnosis="angina secret")

    send_due_reminders(now=NOW)

    notification = Notification.objects.get(kind="appointment_reminder")
    text = f"{notification.title} {notification.body} {notification.data}"
    assert "secret" not in text
    assert appointment.provider.last_name not in text
    assert notification.body == f"Your appointment on {appointment.starts_at.isoformat()} is in 1 hour."


@pytest.mark.django_db
def test_offsets_come_from_the_setting(settings):
    settings.APPOINTMENT_REMINDER_OFFSETS_MINUTES = [90]
    appointment = confirmed(timedelta(minutes=80))

    assert send_due_reminders(now=NOW) == 1
    assert reminders_of(appointment) == [(appointment.patient_id, f"appointment:{appointment.pk}:reminder:90")]


# --- Expiry and no-shows ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_request_unconfirmed_two_hours_before_its_start_expires_once_and_the_patient_is_told():
    soon = AppointmentFactory(status=S.REQUESTED, starts_at=NOW + timedelta(minutes=119))
    later = AppointmentFactory(status=S.REQUESTED, starts_at=NOW + timedelta(minutes=121))

    assert expire_requests(now=NOW) == 1
    assert expire_requests(now=NOW) == 0

    soon.refresh_from_db()
    later.refresh_from_db()
    assert (soon.status, later.status) == (S.CANCELLED, S.REQUESTED)
    assert soon.status_changed_by is None
    event = AppointmentEvent.objects.get(appointment=soon)
    assert (event.from_status, event.to_status, event.actor_id, event.note) == (
        S.REQUESTED,
        S.CANCELLED,
        None,
        "expired",
    )
    told = Notification.objects.get(kind="appointment_expired")
    assert told.recipient_id == soon.patient_id
    assert "Check-up" not in told.body


@pytest.mark.django_db
def test_a_confirmed_appointment_is_not_expired():
    appointment = AppointmentFactory(status=S.CONFIRMED, starts_at=NOW + timedelta(minutes=30))

    assert expire_requests(now=NOW) == 0
    appointment.refresh_from_db()
    assert appointment.status == S.CONFIRMED


@pytest.mark.django_db
def test_a_confirmed_appointment_not_checked_in_after_the_grace_period_is_a_no_show():
    late = AppointmentFactory(status=S.CONFIRMED, starts_at=NOW - timedelta(minutes=15))
    in_grace = AppointmentFactory(status=S.CONFIRMED, starts_at=NOW - timedelta(minutes=14))
    checked_in = AppointmentFactory(status=S.CHECKED_IN, starts_at=NOW - timedelta(hours=1))

    assert mark_no_shows(now=NOW) == 1
    assert mark_no_shows(now=NOW) == 0

    statuses = {a.pk: a.status for a in type(late).objects.filter(pk__in=[late.pk, in_grace.pk, checked_in.pk])}
    assert statuses == {late.pk: S.NO_SHOW, in_grace.pk: S.CONFIRMED, checked_in.pk: S.CHECKED_IN}
    event = AppointmentEvent.objects.get(appointment=late)
    assert (event.from_status, event.to_status, event.actor_id) == (S.CONFIRMED, S.NO_SHOW, None)


@pytest.mark.django_db
def test_the_grace_period_comes_from_the_setting(settings):
    settings.APPOINTMENT_NO_SHOW_GRACE_MINUTES = 60
    appointment = AppointmentFactory(status=S.CONFIRMED, starts_at=NOW - timedelta(minutes=30))

    assert mark_no_shows(now=NOW) == 0
    assert mark_no_shows(now=NOW + timedelta(minutes=30)) == 1
    appointment.refresh_from_db()
    assert appointment.status == S.NO_SHOW


@pytest.mark.django_db
def test_appointments_already_reminded_do_not_crowd_out_due_ones(monkeypatch):
    from appointments import reminders

    monkeypatch.setattr(reminders, "BATCH", 1)
    reminded = confirmed(timedelta(minutes=10))
    Reminder.objects.create(appointment=reminded, offset_minutes=60)
    Reminder.objects.create(appointment=reminded, offset_minutes=1440, skipped=True)
    due = confirmed(timedelta(minutes=20))

    assert send_due_reminders(now=NOW) == 1
    assert reminders_of(due) == [(due.patient_id, f"appointment:{due.pk}:reminder:60")]
