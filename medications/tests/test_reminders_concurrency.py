"""Overlapping beats against real PostgreSQL: four reminder jobs that all see the same due doses remind once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from accounts.tests.factories import UserFactory
from medications import doses
from medications.models import Dose
from medications.tests.factories import DoseFactory, MedicationPlanFactory
from notifications.models import Notification

JOBS = 4


@pytest.mark.django_db(transaction=True)
def test_overlapping_reminder_jobs_remind_each_dose_once():
    if connection.vendor != "postgresql":
        pytest.skip("the claim under test is PostgreSQL's SKIP LOCKED")
    now = timezone.now()
    patients = [UserFactory() for _ in range(3)]
    for patient in patients:
        for minutes in (1, 3):
            DoseFactory(plan=MedicationPlanFactory(patient=patient), scheduled_at=now - timedelta(minutes=minutes))
    barrier = threading.Barrier(JOBS)
    reminded: list[int] = []
    lock = threading.Lock()

    def job() -> None:
        try:
            barrier.wait(timeout=30)
            count = doses.send_dose_reminders(now=now)
            with lock:
                reminded.append(count)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=job) for _ in range(JOBS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(reminded) == JOBS
    assert sum(reminded) == 6  # every dose once, whichever job claimed it
    told = Notification.objects.filter(kind="medication_due")
    # A patient's two doses may be split between two jobs (two notifications), but no dose is told twice.
    assert sum(int(body.split()[0]) for body in told.values_list("body", flat=True)) == 6
    assert set(told.values_list("recipient_id", flat=True)) == {p.pk for p in patients}
    assert not Dose.objects.filter(reminded_at__isnull=True).exists()
