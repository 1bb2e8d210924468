"""Overlapping beats against real PostgreSQL: four jobs that all read the same due reminder send it once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from appointments.models import AppointmentStatus, Reminder
from appointments.reminders import send_due_reminders
from appointments.tests.factories import AppointmentFactory
from notifications.models import Notification

JOBS = 4


@pytest.mark.django_db(transaction=True)
def test_overlapping_reminder_jobs_send_each_reminder_once(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the claim under test is PostgreSQL's unique index under concurrent inserts")
    settings.APPOINTMENT_REMINDER_OFFSETS_MINUTES = [1440, 60]
    now = timezone.now()
    appointments = [
        AppointmentFactory(status=AppointmentStatus.CONFIRMED, starts_at=now + timedelta(minutes=30 + 60 * i))
        for i in range(3)
    ]
    for appointment in appointments:
        type(appointment).objects.filter(pk=appointment.pk).update(created_at=now - timedelta(days=2))
    barrier = threading.Barrier(JOBS)
    sent: list[int] = []
    lock = threading.Lock()

    def job() -> None:
        try:
            barrier.wait(timeout=30)
            count = send_due_reminders(now=now)
            with lock:
                sent.append(count)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=job) for _ in range(JOBS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(sent) == JOBS
    assert sum(sent) == 3  # one per appointment, whichever job claimed it
    assert Notification.objects.filter(kind="appointment_reminder").count() == 3
    # 30 minutes ahead: both offsets due, 60 sent and 1440 recorded as skipped; 90 and 150 minutes ahead: 1440 only.
    rows = sorted(Reminder.objects.values_list("offset_minutes", "skipped"))
    assert rows == [(60, False), (1440, False), (1440, False), (1440, True)]
