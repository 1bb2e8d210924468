"""Writes and rules: booking (the database refuses a double booking), the status machine, provider-only fields.

Every status change is one conditional UPDATE (compare-and-swap on the status it expects): two people acting on
one appointment at once cannot both win; the loser gets 409 `status_changed` naming the status now stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from accounts.models import User
from config.errors import ConflictError, field_error

from . import availability, events
from .models import (
    NO_DOUBLE_BOOKING,
    Appointment,
    AppointmentEvent,
    AppointmentStatus,
    AppointmentType,
    Provider,
)
from .selectors import rules_for, schedule

S = AppointmentStatus
PATIENT, PROVIDER = "patient", "provider"


@dataclass(frozen=True)
class Transition:
    sources: tuple[str, ...]
    target: str
    parties: tuple[str, ...]  # who may make it: the appointment's patient and/or its provider


# The state machine, whole. `reschedule` also books the new appointment (reschedule_appointment).
TRANSITIONS: dict[str, Transition] = {
    "confirm": Transition((S.REQUESTED,), S.CONFIRMED, (PROVIDER,)),
    "check_in": Transition((S.CONFIRMED,), S.CHECKED_IN, (PROVIDER,)),
    "complete": Transition((S.CHECKED_IN,), S.COMPLETED, (PROVIDER,)),
    "cancel": Transition((S.REQUESTED, S.CONFIRMED), S.CANCELLED, (PATIENT, PROVIDER)),
    "no_show": Transition((S.REQUESTED, S.CONFIRMED), S.NO_SHOW, (PROVIDER,)),
    "reschedule": Transition((S.REQUESTED, S.CONFIRMED), S.RESCHEDULED, (PATIENT, PROVIDER)),
}

CLINICAL_FIELDS = ("notes", "diagnosis", "plan", "video_link")


def party_of(appointment: Appointment, user: User) -> str | None:
    if user.pk == appointment.provider_id:
        return PROVIDER
    if user.pk == appointment.patient_id:
        return PATIENT
    return None


# --- Booking ----------------------------------------------------------------------------------


def book_appointment(
    *,
    patient: User,
    provider: Provider,
    appointment_type: AppointmentType,
    starts_at: datetime,
    reason: str = "",
    booked_by: User,
    rescheduled_from: Appointment | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Book `starts_at` of `appointment_type`: 400 when the slot is not bookable, 409 `slot_taken` on a clash.

    The checks here are for a helpful 400; the guard against double booking is the database's exclusion
    constraint (PostgreSQL), which holds however many requests race. SQLite (development only) checks for an
    overlap inside the write transaction instead.
    """
    now = now or timezone.now()
    if appointment_type.provider_id != provider.pk or not appointment_type.active:
        raise field_error("appointment_type", "Not an active appointment type of this provider.", "invalid_type")
    if not provider.accepting or not provider.user.is_active:
        raise field_error("provider", "This provider is not accepting bookings.", "not_accepting")
    if patient.pk == provider.pk:
        raise field_error("patient", "A provider cannot book an appointment with themselves.", "self_booking")
    rules = rules_for(provider=provider, appointment_type=appointment_type)
    day = starts_at.astimezone(timezone.get_default_timezone()).date()
    zone, hours, overrides = schedule(
        provider=provider, start_date=day - timedelta(days=1), end_date=day + timedelta(days=1)
    )
    problem = availability.slot_problem(
        start=starts_at, zone=zone, hours=hours, overrides=overrides, rules=rules, now=now
    )
    if problem is not None:
        raise field_error("starts_at", problem[1], problem[0])
    blocked_start, blocked_end = rules.blocked(starts_at)
    appointment = Appointment(
        patient=patient,
        provider_id=provider.pk,
        appointment_type=appointment_type,
        starts_at=starts_at,
        ends_at=starts_at + rules.duration,
        blocked_start=blocked_start,
        blocked_end=blocked_end,
        reason=reason,
        telemedicine=appointment_type.telemedicine,
        booked_by=booked_by,
        status_changed_at=now,
        status_changed_by=booked_by,
        rescheduled_from=rescheduled_from,
    )
    try:
        _insert(appointment)
    except IntegrityError as error:
        if not _is_double_booking(error):
            raise
        clash = _clash(appointment)
        when = f" (a visit from {clash.starts_at.isoformat()} to {clash.ends_at.isoformat()})" if clash else ""
        raise ConflictError(f"The provider already has a booking at that time{when}.", code="slot_taken") from None
    AppointmentEvent.objects.create(appointment=appointment, actor=booked_by, at=now, to_status=S.REQUESTED)
    events.appointment_booked(appointment, by=booked_by)
    return appointment


DEADLOCK_RETRIES = 3


def _insert(appointment: Appointment) -> None:
    """Insert the booking in a savepoint; IntegrityError when the database (or, on SQLite, the check) refuses it.

    Two requests inserting overlapping rows at the same moment can deadlock on PostgreSQL: each has written its
    row and, checking the exclusion constraint, waits for the other's uncommitted one. PostgreSQL aborts one
    (`deadlock_detected`, 40P01); its savepoint is rolled back and the insert tried again, which now waits for the
    other's transaction and then sees its row: a clash (409), or a free slot if that one rolled back.
    """
    for attempt in range(DEADLOCK_RETRIES + 1):
        try:
            with transaction.atomic():
                if connection.vendor != "postgresql" and _clash(appointment) is not None:
                    raise IntegrityError(NO_DOUBLE_BOOKING)
                appointment.save(force_insert=True)
            return
        except OperationalError as error:
            if attempt == DEADLOCK_RETRIES or getattr(error.__cause__, "sqlstate", None) != "40P01":
                raise


def _is_double_booking(error: IntegrityError) -> bool:
    diag = getattr(error.__cause__, "diag", None)
    if diag is not None:
        return getattr(diag, "constraint_name", None) == NO_DOUBLE_BOOKING
    return NO_DOUBLE_BOOKING in str(error)


def _clash(appointment: Appointment) -> Appointment | None:
    """The provider's active booking whose blocked range overlaps the new one's (half-open)."""
    return (
        Appointment.objects.active()
        .filter(
            provider_id=appointment.provider_id,
            blocked_start__lt=appointment.blocked_end,
            blocked_end__gt=appointment.blocked_start,
        )
        .exclude(pk=appointment.pk)
        .order_by("blocked_start")
        .first()
    )


# --- Status changes ---------------------------------------------------------------------------


def change_status(
    *, appointment: Appointment, action: str, actor: User, note: str = "", now: datetime | None = None
) -> Appointment:
    """Make the `action` transition if `actor` is an allowed party and the status allows it (one CAS update)."""
    now = now or timezone.now()
    transition = TRANSITIONS[action]
    party = party_of(appointment, actor)
    if party not in transition.parties:
        who = " or the ".join(transition.parties)
        raise PermissionDenied(f"Only the {who} may {action.replace('_', '-')} this appointment.")
    if appointment.status not in transition.sources:
        raise ConflictError(
            f"An appointment that is {appointment.status} cannot be {transition.target.replace('_', ' ')}; "
            f"allowed from: {', '.join(transition.sources)}.",
            code="invalid_transition",
        )
    _check_timing(appointment=appointment, action=action, party=party, now=now)
    swap_status(
        appointment=appointment, expected=appointment.status, target=transition.target, actor=actor, note=note, now=now
    )
    if action == "confirm":
        events.appointment_confirmed(appointment)
    elif action == "cancel":
        events.appointment_cancelled(appointment, by=actor)
    return appointment


def _check_timing(*, appointment: Appointment, action: str, party: str, now: datetime) -> None:
    if action in ("cancel", "reschedule") and party == PATIENT:
        cutoff = timedelta(hours=settings.APPOINTMENT_CANCEL_CUTOFF_HOURS)
        if appointment.starts_at - now < cutoff:
            hours = settings.APPOINTMENT_CANCEL_CUTOFF_HOURS
            raise ValidationError(
                f"Patients {action} at least {hours} hours before the start; ask the provider.", code="cancel_cutoff"
            )
    if action == "no_show" and now < appointment.starts_at:
        raise ValidationError("A no-show is marked only after the start time.", code="too_early")


def swap_status(
    *, appointment: Appointment, expected: str, target: str, actor: User | None, note: str, now: datetime
) -> None:
    """Move `appointment` from `expected` to `target` by one conditional UPDATE, and record who (None: the system,
    e.g. an expired request) and when; 409 `status_changed` when someone moved it first."""
    changed = Appointment.objects.filter(pk=appointment.pk, status=expected).update(
        status=target, status_changed_at=now, status_changed_by=actor, updated_at=now
    )
    if changed != 1:
        current = Appointment.objects.filter(pk=appointment.pk).values_list("status", flat=True).first()
        raise ConflictError(f"The appointment changed meanwhile: it is {current} now.", code="status_changed")
    AppointmentEvent.objects.create(
        appointment=appointment, actor=actor, at=now, from_status=expected, to_status=target, note=note
    )
    appointment.status, appointment.status_changed_at, appointment.status_changed_by = target, now, actor
    appointment.updated_at = now


@transaction.atomic
def reschedule_appointment(
    *,
    appointment: Appointment,
    actor: User,
    starts_at: datetime,
    appointment_type: AppointmentType | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Move the old booking to `rescheduled` and book the new one linked to it, in one transaction.

    The old one stops holding its time first, so the new slot may overlap it (and nothing else); if the new
    booking is refused (400, 409) the whole change is rolled back and the old booking stands.
    """
    now = now or timezone.now()
    change_status(appointment=appointment, action="reschedule", actor=actor, now=now)
    provider = Provider.objects.select_related("user").get(pk=appointment.provider_id)
    return book_appointment(
        patient=appointment.patient,
        provider=provider,
        appointment_type=appointment_type or appointment.appointment_type,
        starts_at=starts_at,
        reason=appointment.reason if reason is None else reason,
        booked_by=actor,
        rescheduled_from=appointment,
        now=now,
    )


# --- Other fields -----------------------------------------------------------------------------


def update_appointment(*, appointment: Appointment, actor: User, changes: dict) -> Appointment:
    """The patient edits the reason; the provider the clinical fields and the video link (400 naming them)."""
    party = party_of(appointment, actor)
    if party is None:
        raise PermissionDenied("Only the patient or the provider changes an appointment.")
    if party != PROVIDER:
        refused = [field for field in CLINICAL_FIELDS if field in changes]
        if refused:
            raise ValidationError(
                {
                    field: ValidationError("Only the provider writes this field.", code="provider_only")
                    for field in refused
                }
            )
    if "video_link" in changes and changes["video_link"] and not appointment.telemedicine:
        raise field_error("video_link", "Only a telemedicine appointment has a video link.", "not_telemedicine")
    if "reason" in changes and appointment.status not in (S.REQUESTED, S.CONFIRMED):
        raise field_error("reason", f"The reason of a {appointment.status} appointment is kept as it was.", "closed")
    for field, value in changes.items():
        setattr(appointment, field, value)
    if changes:
        appointment.save(update_fields=[*changes, "updated_at"])
    return appointment
