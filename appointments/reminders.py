"""The beat jobs of appointments: reminders before the start, expiry of unconfirmed requests, no-shows after it.

Reminders: for each offset of APPOINTMENT_REMINDER_OFFSETS_MINUTES (default 24 h and 1 h), a confirmed
appointment whose start minus the offset has passed (and whose start has not) gets one reminder, told to the
patient through `notify`. The claim is the database's: a `Reminder` row per (appointment, offset) under a unique
constraint, inserted in the same transaction as the notification. Two runs, or two overlapping beats, cannot both
insert it (the second waits for the first's commit, then fails the constraint and sends nothing); a run that dies
rolls back its row with its notification, so nothing is lost and no sweeper is needed. Where several offsets are
due at once (the beat was down), only the shortest is sent and the others are recorded as skipped. An offset whose
moment had passed when the appointment was booked is not sent (the booking told the patient). Requested, cancelled
and rescheduled appointments get no reminders.

Expiry: a request still unconfirmed APPOINTMENT_REQUEST_EXPIRY_HOURS (default 2) before its start is cancelled,
with the event note `expired`, and the patient is told. No-show: a confirmed appointment not checked in
APPOINTMENT_NO_SHOW_GRACE_MINUTES (default 15) after its start becomes `no_show`. Both are the state machine's
compare-and-swap with no actor (the system): an appointment changed meanwhile is left as it is.

`due_offsets` is pure; the jobs take `now` so tests need no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Prefetch, Q
from django.utils import timezone

from config.errors import ConflictError

from . import events, services
from .models import Appointment, AppointmentStatus, Reminder

EXPIRED = "expired"  # the note of the event that cancels an expired request
BATCH = 500  # appointments handled per run of a job; the next run takes the rest


def due_offsets(
    *, starts_at: datetime, booked_at: datetime, now: datetime, offsets: Iterable[int], claimed: Iterable[int]
) -> tuple[int | None, list[int]]:
    """(the offset to send now or None, the offsets to record as skipped) for one appointment.

    An offset is due when start - offset <= now < start, it is not claimed yet, and its moment came after the booking.
    """
    if now >= starts_at:
        return None, []
    taken = set(claimed)
    due = sorted(
        offset
        for offset in set(offsets)
        if offset not in taken and booked_at <= starts_at - timedelta(minutes=offset) <= now
    )
    if not due:
        return None, []
    return due[0], due[1:]


def reminder_offsets() -> list[int]:
    return sorted({int(offset) for offset in settings.APPOINTMENT_REMINDER_OFFSETS_MINUTES if int(offset) > 0})


def send_due_reminders(*, now: datetime | None = None) -> int:
    """The beat job: send every due reminder once. Answers how many were sent by this run."""
    now = now or timezone.now()
    offsets = reminder_offsets()
    if not offsets:
        return 0
    # Only appointments with an unclaimed offset due (so a busy day's claimed ones never crowd out the rest).
    due = Q()
    for offset in offsets:
        before = timedelta(minutes=offset)
        due |= Q(starts_at__lte=now + before, created_at__lte=F("starts_at") - before) & ~Exists(
            Reminder.objects.filter(appointment=OuterRef("pk"), offset_minutes=offset)
        )
    candidates = (
        Appointment.objects.filter(due, status=AppointmentStatus.CONFIRMED, starts_at__gt=now)
        .select_related("patient")
        .prefetch_related(Prefetch("reminders", queryset=Reminder.objects.only("appointment_id", "offset_minutes")))
        .order_by("starts_at")[:BATCH]
    )
    sent = 0
    for appointment in candidates:
        send, skip = due_offsets(
            starts_at=appointment.starts_at,
            booked_at=appointment.created_at,
            now=now,
            offsets=offsets,
            claimed=[reminder.offset_minutes for reminder in appointment.reminders.all()],
        )
        if send is not None and claim_and_send(appointment=appointment, offset=send, skip=skip, now=now):
            sent += 1
    return sent


def claim_and_send(*, appointment: Appointment, offset: int, skip: Iterable[int] = (), now: datetime) -> bool:
    """Insert the reminder's row and notify in one transaction; False when another run holds the row, or the
    appointment stopped being confirmed since it was read (its row is locked here, so a cancellation either
    commits first and is seen, or waits for the reminder)."""
    try:
        with transaction.atomic():
            still = Appointment.objects.select_for_update().filter(
                pk=appointment.pk, status=AppointmentStatus.CONFIRMED
            )
            if not still.exists():
                return False
            Reminder.objects.create(appointment=appointment, offset_minutes=offset, created_at=now)
            Reminder.objects.bulk_create(
                [Reminder(appointment=appointment, offset_minutes=o, skipped=True, created_at=now) for o in skip],
                ignore_conflicts=True,
            )
            events.appointment_reminder(appointment, offset_minutes=offset)
    except IntegrityError:
        return False
    return True


def _system_change(*, appointment: Appointment, expected: str, target: str, note: str, now: datetime) -> bool:
    # The system makes this change (no actor), which no party's TRANSITIONS entry describes.
    services.swap_status(appointment=appointment, expected=expected, target=target, actor=None, note=note, now=now)
    return True


def expire_requests(*, now: datetime | None = None) -> int:
    """The beat job: cancel requests unconfirmed APPOINTMENT_REQUEST_EXPIRY_HOURS before the start; tell the patient."""
    now = now or timezone.now()
    cutoff = now + timedelta(hours=settings.APPOINTMENT_REQUEST_EXPIRY_HOURS)
    due = Appointment.objects.filter(status=AppointmentStatus.REQUESTED, starts_at__lte=cutoff).select_related(
        "patient"
    )
    expired = 0
    for appointment in due.order_by("starts_at")[:BATCH]:
        try:
            with transaction.atomic():
                _system_change(
                    appointment=appointment,
                    expected=AppointmentStatus.REQUESTED,
                    target=AppointmentStatus.CANCELLED,
                    note=EXPIRED,
                    now=now,
                )
                events.appointment_expired(appointment)
        except ConflictError:  # confirmed or cancelled meanwhile
            continue
        expired += 1
    return expired


def mark_no_shows(*, now: datetime | None = None) -> int:
    """The beat job: confirmed appointments not checked in APPOINTMENT_NO_SHOW_GRACE_MINUTES after the start."""
    now = now or timezone.now()
    grace = settings.APPOINTMENT_NO_SHOW_GRACE_MINUTES
    due = Appointment.objects.filter(status=AppointmentStatus.CONFIRMED, starts_at__lte=now - timedelta(minutes=grace))
    marked = 0
    for appointment in due.order_by("starts_at")[:BATCH]:
        try:
            with transaction.atomic():
                _system_change(
                    appointment=appointment,
                    expected=AppointmentStatus.CONFIRMED,
                    target=AppointmentStatus.NO_SHOW,
                    note=f"not checked in {grace} minutes after the start",
                    now=now,
                )
        except ConflictError:  # checked in or cancelled meanwhile
            continue
        marked += 1
    return marked
