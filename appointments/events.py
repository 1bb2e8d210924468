"""The one seam through which appointments leave this app: notification kinds and `notify()` calls.

Texts carry no reason, diagnosis or note: the inbox says that something happened and when; the app opens the
appointment. The kinds are registered here (from AppConfig.ready), since notifications knows no domain app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notifications import kinds
from notifications.models import Channel, Severity
from notifications.services import notify

if TYPE_CHECKING:
    from accounts.models import User

    from .models import Appointment

CHANNELS = (Channel.IN_APP, Channel.EMAIL, Channel.PUSH)

KINDS = (
    kinds.Kind(
        "appointment_booked",
        "Appointment requested",
        Severity.INFO,
        CHANNELS,
        mutable=True,
        title="New appointment request",
        body="An appointment was requested for {starts_at}.",
        neutral="OpenVitals: you have a new appointment request.",
    ),
    kinds.Kind(
        "appointment_confirmed",
        "Appointment confirmed",
        Severity.INFO,
        CHANNELS,
        mutable=True,
        title="Appointment confirmed",
        body="Your appointment on {starts_at} is confirmed.",
        neutral="OpenVitals: an appointment was confirmed.",
    ),
    kinds.Kind(
        "appointment_cancelled",
        "Appointment cancelled",
        Severity.INFO,
        CHANNELS,
        mutable=True,
        title="Appointment cancelled",
        body="The appointment on {starts_at} was cancelled.",
        neutral="OpenVitals: an appointment was cancelled.",
    ),
)


def register_kinds() -> None:
    for kind in KINDS:
        if kind.code not in kinds.KINDS:
            kinds.register(kind)


def _payload(appointment: Appointment) -> dict:
    return {"appointment_id": str(appointment.pk), "starts_at": appointment.starts_at.isoformat()}


def appointment_booked(appointment: Appointment, *, by: User) -> None:
    """The provider is told of a new request, and the patient too when someone else booked it for them."""
    recipients = [person for person in (appointment.provider, appointment.patient) if person.pk != by.pk]
    if not recipients:
        return
    notify(
        "appointment_booked",
        recipients=recipients,
        about=appointment.patient,
        payload=_payload(appointment),
        dedupe_key=f"appointment:{appointment.pk}:booked",
    )


def appointment_confirmed(appointment: Appointment) -> None:
    notify(
        "appointment_confirmed",
        recipients=[appointment.patient],
        about=appointment.patient,
        payload=_payload(appointment),
        dedupe_key=f"appointment:{appointment.pk}:confirmed",
    )


def appointment_cancelled(appointment: Appointment, *, by: User) -> None:
    other = appointment.provider if by.pk == appointment.patient_id else appointment.patient
    notify(
        "appointment_cancelled",
        recipients=[other],
        about=appointment.patient,
        payload=_payload(appointment),
        dedupe_key=f"appointment:{appointment.pk}:cancelled",
    )


# --- Reminders and expired requests (issue #13 §3: appointments/reminders.py) -----------------------------------
# Told to the patient only: the provider has the day view and the calendar feed. Neither text names the provider,
# the reason or the type (a specialty can say as much as a diagnosis).

KINDS = (
    *KINDS,
    kinds.Kind(
        "appointment_reminder",
        "Appointment reminder",
        Severity.INFO,
        CHANNELS,
        mutable=True,
        title="Appointment reminder",
        body="Your appointment on {starts_at} is in {when}.",
        neutral="OpenVitals: you have an upcoming appointment.",
    ),
    kinds.Kind(
        "appointment_expired",
        "Appointment request expired",
        Severity.INFO,
        CHANNELS,
        mutable=True,
        title="Appointment request expired",
        body="Your request for {starts_at} was not confirmed in time and has been cancelled.",
        neutral="OpenVitals: an appointment request was not confirmed in time.",
    ),
)


def _in_words(minutes: int) -> str:
    if minutes % 60:
        return f"{minutes} minutes"
    hours = minutes // 60
    return "1 hour" if hours == 1 else f"{hours} hours"


def appointment_reminder(appointment: Appointment, *, offset_minutes: int) -> None:
    notify(
        "appointment_reminder",
        recipients=[appointment.patient],
        about=appointment.patient,
        payload={**_payload(appointment), "when": _in_words(offset_minutes)},
        dedupe_key=f"appointment:{appointment.pk}:reminder:{offset_minutes}",
    )


def appointment_expired(appointment: Appointment) -> None:
    notify(
        "appointment_expired",
        recipients=[appointment.patient],
        about=appointment.patient,
        payload=_payload(appointment),
        dedupe_key=f"appointment:{appointment.pk}:expired",
    )
