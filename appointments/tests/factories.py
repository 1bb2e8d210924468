from datetime import UTC, datetime, time, timedelta

import factory
from django.utils import timezone

from accounts.tests.factories import ClinicianFactory, UserFactory
from appointments.models import Appointment, AppointmentType, Provider, WorkingHours


class ProviderFactory(factory.django.DjangoModelFactory):
    """A clinician taking bookings, in UTC, 08:00-18:00 every day (see `hours`), 2 h notice, 15 min slots."""

    class Meta:
        model = Provider
        skip_postgeneration_save = True

    user = factory.SubFactory(ClinicianFactory)
    timezone = "UTC"
    languages = factory.LazyFunction(lambda: ["en"])

    @factory.post_generation
    def hours(self, create, extracted, **kwargs):
        if not create:
            return
        windows = extracted if extracted is not None else [(day, time(8), time(18)) for day in range(7)]
        WorkingHours.objects.bulk_create(
            WorkingHours(provider=self, weekday=day, start=start, end=end) for day, start, end in windows
        )


class AppointmentTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AppointmentType

    provider = factory.SubFactory(ProviderFactory)
    name = "Consultation"
    duration_minutes = 30


def a_slot(days: int = 3, hour: int = 10, minute: int = 0) -> datetime:
    """A start `days` from today (UTC) at hour:minute: inside the factory provider's hours, past the notice."""
    day = timezone.now().astimezone(UTC).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


class AppointmentFactory(factory.django.DjangoModelFactory):
    """An appointment written directly (not through the booking service): one per new provider by default."""

    class Meta:
        model = Appointment

    patient = factory.SubFactory(UserFactory)
    appointment_type = factory.SubFactory(AppointmentTypeFactory)
    provider = factory.LazyAttribute(lambda o: o.appointment_type.provider.user)
    starts_at = factory.LazyFunction(a_slot)
    ends_at = factory.LazyAttribute(lambda o: o.starts_at + timedelta(minutes=o.appointment_type.duration_minutes))
    blocked_start = factory.LazyAttribute(lambda o: o.starts_at)
    blocked_end = factory.LazyAttribute(lambda o: o.ends_at)
    reason = "Check-up"
    booked_by = factory.LazyAttribute(lambda o: o.patient)
