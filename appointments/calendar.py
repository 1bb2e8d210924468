"""The iCalendar feed (RFC 5545) of a person's appointments, and its secret token.

The token in the feed's URL is the credential (calendar apps send no Authorization header). It is 32 random bytes
shown once when made or rotated; only its SHA-256 is stored (a high-entropy secret needs no slow hash), so a
database dump opens no feed; rotating replaces the hash and the old URL stops working at once. Request logs drop
the query string's `token=` value (config/logging.py).

Events carry the time, the provider's name (the patient's feed) and a link to the app: never the reason, the type,
notes or diagnosis. A provider's feed does not name the patient (it syncs to third-party calendars): "OpenVitals
appointment". UID `<appointment id>@openvitals`; SEQUENCE counts the status changes after the booking, so a client
replaces its copy when one happens. Cancelled and rescheduled appointments stay in the feed as STATUS:CANCELLED,
so calendar apps take them off the day instead of keeping a stale copy.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from icalendar import Calendar, Event, vDuration, vText

from accounts.models import User

from .models import Appointment, AppointmentStatus, CalendarFeed

S = AppointmentStatus
PRODID = "-//OpenVitals//Appointments//EN"
MAX_EVENTS = 1000
ICAL_STATUS = {
    S.REQUESTED: "TENTATIVE",
    S.CONFIRMED: "CONFIRMED",
    S.CHECKED_IN: "CONFIRMED",
    S.COMPLETED: "CONFIRMED",
    S.NO_SHOW: "CONFIRMED",
    S.CANCELLED: "CANCELLED",
    S.RESCHEDULED: "CANCELLED",
}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def rotate_token(*, user: User) -> str:
    """A new secret for the user's feed (made on first use); the old one stops working. Answers the secret."""
    token = secrets.token_urlsafe(32)
    CalendarFeed.objects.update_or_create(user=user, defaults={"token_hash": hash_token(token)})
    return token


def feed_owner(*, token: str) -> User | None:
    if not token:
        return None
    feed = CalendarFeed.objects.select_related("user").filter(token_hash=hash_token(token)).first()
    if feed is None or not feed.user.is_active:
        return None
    return feed.user


def feed_appointments(*, user: User, now: datetime) -> list[Appointment]:
    """The user's appointments as patient or provider from APPOINTMENT_CALENDAR_PAST_DAYS ago on: one query."""
    since = now - timedelta(days=settings.APPOINTMENT_CALENDAR_PAST_DAYS)
    return list(
        Appointment.objects.filter(Q(patient=user) | Q(provider=user), ends_at__gte=since)
        .select_related("provider")
        .annotate(changes=Count("events", filter=Q(events__from_status__isnull=False)))
        .order_by("starts_at")[:MAX_EVENTS]
    )


def build_feed(*, user: User, appointments: list[Appointment], now: datetime) -> bytes:
    refresh = vDuration(timedelta(minutes=settings.APPOINTMENT_CALENDAR_REFRESH_MINUTES))
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", "OpenVitals appointments")
    calendar.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", refresh)
    link = settings.FRONTEND_URL.rstrip("/")
    for appointment in appointments:
        event = Event()
        event.add("uid", f"{appointment.pk}@openvitals")
        event.add("sequence", getattr(appointment, "changes", 0))
        event.add("dtstamp", (appointment.updated_at or now).astimezone(UTC))
        event.add("created", appointment.created_at.astimezone(UTC))
        event.add("last-modified", appointment.updated_at.astimezone(UTC))
        event.add("dtstart", appointment.starts_at.astimezone(UTC))
        event.add("dtend", appointment.ends_at.astimezone(UTC))
        event.add("summary", vText(_summary(appointment, user)))
        url = f"{link}/appointments/{appointment.pk}"
        event.add("url", url)
        event.add("description", vText(f"Open the appointment in OpenVitals: {url}"))
        event.add("status", ICAL_STATUS.get(appointment.status, "CONFIRMED"))
        event.add("transp", "TRANSPARENT" if ICAL_STATUS.get(appointment.status) == "CANCELLED" else "OPAQUE")
        calendar.add_component(event)
    return calendar.to_ical()


def _summary(appointment: Appointment, user: User) -> str:
    if appointment.patient_id == user.pk:
        name = appointment.provider.get_full_name() or "your provider"
        return f"Appointment with Dr {name}"
    return "OpenVitals appointment"


def feed_for(*, user: User, now: datetime | None = None) -> bytes:
    now = now or timezone.now()
    return build_feed(user=user, appointments=feed_appointments(user=user, now=now), now=now)
