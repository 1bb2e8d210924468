"""Reads: the provider directory and the loader behind the pure availability function."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet

from . import availability
from .models import Appointment, AppointmentType, DateOverride, Provider, WorkingHours


def providers() -> QuerySet[Provider]:
    """Providers open to booking, with what the directory shows (specialty, organization, active types)."""
    return Provider.objects.filter(accepting=True, user__is_active=True).select_related(
        "user", "user__clinician_profile", "user__clinician_profile__organization"
    )


def rules_for(*, provider: Provider, appointment_type: AppointmentType) -> availability.Rules:
    return availability.Rules(
        duration=timedelta(minutes=appointment_type.duration_minutes),
        interval=timedelta(minutes=provider.slot_interval_minutes),
        buffer_before=timedelta(minutes=provider.buffer_before_minutes),
        buffer_after=timedelta(minutes=provider.buffer_after_minutes),
        minimum_notice=timedelta(minutes=provider.minimum_notice_minutes),
        horizon=timedelta(days=provider.horizon_days),
    )


def schedule(
    *, provider: Provider, start_date: date, end_date: date
) -> tuple[ZoneInfo, list[availability.Window], list[availability.Override]]:
    """The provider's zone, weekly hours and the overrides of the dates: two queries."""
    hours = [
        availability.Window(weekday, start, end)
        for weekday, start, end in WorkingHours.objects.filter(provider=provider).values_list("weekday", "start", "end")
    ]
    overrides = [
        availability.Override(day, kind, start, end)
        for day, kind, start, end in DateOverride.objects.filter(
            provider=provider, date__range=(start_date, end_date)
        ).values_list("date", "kind", "start", "end")
    ]
    return ZoneInfo(provider.timezone), hours, overrides


def blocked_ranges(*, provider: Provider, since: datetime, until: datetime) -> list[availability.Range]:
    """The blocked ranges of the provider's active bookings that reach into [since, until): one query."""
    rows = Appointment.objects.active().filter(
        Q(provider_id=provider.pk), blocked_start__lt=until, blocked_end__gt=since
    )
    return list(rows.values_list("blocked_start", "blocked_end"))


def provider_slots(
    *, provider: Provider, appointment_type: AppointmentType, start_date: date, end_date: date, now: datetime
) -> list[datetime]:
    """Free slot starts of the local days start_date..end_date: three queries, then the pure function."""
    zone, hours, overrides = schedule(provider=provider, start_date=start_date, end_date=end_date)
    rules = rules_for(provider=provider, appointment_type=appointment_type)
    # Local days reach at most 14 hours either side of their UTC dates; buffers a little further.
    since = datetime.combine(start_date, datetime.min.time(), tzinfo=zone) - timedelta(days=1)
    until = datetime.combine(end_date, datetime.min.time(), tzinfo=zone) + timedelta(days=2)
    return availability.free_slots(
        zone=zone,
        hours=hours,
        overrides=overrides,
        blocked=blocked_ranges(provider=provider, since=since, until=until),
        rules=rules,
        now=now,
        start_date=start_date,
        end_date=end_date,
    )
