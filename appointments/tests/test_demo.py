"""The demo seeder (run by seed_demo): providers with hours and overrides, past and upcoming bookings, twice safely."""

from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from appointments.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentEvent,
    DateOverride,
    OverrideKind,
    Provider,
    WorkingHours,
)

pytestmark = pytest.mark.django_db


def test_seed_demo_makes_providers_and_bookings_once_and_without_overlaps():
    call_command("seed_demo", stdout=StringIO())
    counts = (Provider.objects.count(), Appointment.objects.count(), AppointmentEvent.objects.count())
    assert counts[0] == 3
    assert WorkingHours.objects.count() > 0
    assert set(DateOverride.objects.values_list("kind", flat=True)) == {OverrideKind.UNAVAILABLE, OverrideKind.EXTRA}
    assert Provider.objects.filter(appointment_types__telemedicine=True).distinct().count() == 3
    now = timezone.now()
    past = Counter(Appointment.objects.filter(starts_at__lt=now).values_list("status", flat=True))
    upcoming = Counter(Appointment.objects.filter(starts_at__gt=now).values_list("status", flat=True))
    assert set(past) == {"completed", "no_show", "cancelled"}
    assert set(upcoming) == {"requested", "confirmed"}
    completed = Appointment.objects.filter(status="completed")
    assert all(a.notes and a.diagnosis and a.plan for a in completed)
    assert AppointmentEvent.objects.filter(to_status="completed").count() == completed.count()
    # No two active bookings of a provider overlap (the database guards it too).
    active = list(Appointment.objects.filter(status__in=ACTIVE_STATUSES).order_by("provider_id", "blocked_start"))
    for first, second in zip(active, active[1:], strict=False):
        assert first.provider_id != second.provider_id or first.blocked_end <= second.blocked_start

    output = StringIO()
    call_command("seed_demo", stdout=output)
    assert (Provider.objects.count(), Appointment.objects.count(), AppointmentEvent.objects.count()) == counts
    assert "appointments: 0 past and 0 upcoming created" in output.getvalue()
