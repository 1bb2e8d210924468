"""A deadlock between two overlapping inserts (PostgreSQL's exclusion check, each waiting for the other's row) is
retried in its savepoint, not answered 500. bench/appointments.py's same-slot storm found it; here the deadlock is
simulated so the retry path runs every time."""

import pytest
from django.db import OperationalError
from django.db.models import Model

from appointments import services
from appointments.models import Appointment
from appointments.tests.factories import AppointmentTypeFactory, a_slot

pytestmark = pytest.mark.django_db


class Deadlock(Exception):
    sqlstate = "40P01"


class Other(Exception):
    sqlstate = "57014"  # query_canceled: not retried


def failing_save(monkeypatch, cause: type[Exception], times: int) -> list[int]:
    calls = []
    original = Model.save

    def save(self, *args, **kwargs):
        if isinstance(self, Appointment):
            calls.append(1)
            if len(calls) <= times:
                raise OperationalError("deadlock detected") from cause()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Model, "save", save)
    return calls


def book(user):
    kind = AppointmentTypeFactory()
    return services.book_appointment(
        patient=user, provider=kind.provider, appointment_type=kind, starts_at=a_slot(), booked_by=user
    )


def test_a_deadlocked_insert_is_tried_again_and_books(monkeypatch, user):
    calls = failing_save(monkeypatch, Deadlock, times=2)
    appointment = book(user)
    assert len(calls) == 3
    assert Appointment.objects.filter(pk=appointment.pk).exists()


def test_it_gives_up_after_the_retries(monkeypatch, user):
    failing_save(monkeypatch, Deadlock, times=services.DEADLOCK_RETRIES + 1)
    with pytest.raises(OperationalError):
        book(user)
    assert not Appointment.objects.filter(patient=user).exists()


def test_another_operational_error_is_not_retried(monkeypatch, user):
    calls = failing_save(monkeypatch, Other, times=1)
    with pytest.raises(OperationalError):
        book(user)
    assert len(calls) == 1
