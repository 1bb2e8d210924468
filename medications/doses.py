"""The dose jobs: materialise the next 48 h, mark missed doses, remind at dose time and when stock runs low.

Materialising expands each active plan's schedule (medications/schedule.py) in the patient's current timezone over
[max(now - 24 h, plan.doses_from), now + MEDICATION_DOSE_HORIZON_HOURS) and inserts the doses with conflict-skipping
on the unique (plan, scheduled time) key, so the beat job, a retried task and a plan change can all run it again and
add nothing twice. The look-back re-creates doses a stopped beat did not make (they then become missed, as they
were); `doses_from` (the plan's creation or its last change of schedule or timezone) keeps a changed schedule from
back-filling doses before the change.

Regenerating (a changed plan or timezone) deletes the plan's future doses that are still only scheduled and
materialises again: doses already taken, skipped or missed are history and stay.

Reminders: a scheduled dose whose time has come, not yet reminded and not yet past the grace window, is claimed by
setting `reminded_at` on rows locked with SKIP LOCKED in the transaction that writes the notification, so two beats
(or a beat run twice) remind once. A patient's doses due together are one notification, so a busy minute, a beat
that was down, or a DST day is never a storm. The refill reminder is claimed the same way on the plan
(`refill_reminded_at`), and a refill re-arms it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.copy import insert_skipping_conflicts

from . import events
from .models import Dose, DoseStatus, MedicationPlan, PlanStatus
from .schedule import ScheduleError, local_date_of, occurrences

LOOK_BACK = timedelta(hours=24)
# The plan fields planned_rows reads.
SCHEDULE_FIELDS = ("id", "patient_id", "dose", "times", "days_of_week", "interval_hours", "rrule", "timing",
                   "anchor_timezone", "as_needed", "start_date", "end_date", "status", "doses_from")  # fmt: skip
BATCH = 2000  # plans per query page of the materialise job
REMINDER_BATCH = 1000


def horizon() -> timedelta:
    return timedelta(hours=settings.MEDICATION_DOSE_HORIZON_HOURS)


def _zone_of(plan: MedicationPlan) -> str:
    profile = getattr(plan.patient, "profile", None)
    return profile.timezone if profile is not None else "UTC"


# The columns a materialised dose is written with (the others are NULL).
DOSE_COLUMNS = ("id", "plan_id", "patient_id", "scheduled_at", "local_date", "quantity", "status", "late",
                "skip_reason", "note", "created_at")  # fmt: skip
DOSE_TYPES = (
    "uuid",
    "uuid",
    "uuid",
    "timestamptz",
    "date",
    "numeric",
    "text",
    "boolean",
    "text",
    "text",
    "timestamptz",
)


def planned_rows(plan: MedicationPlan, *, zone: str, now: datetime, start: datetime | None = None) -> list[tuple]:
    """The plan's doses from max(start or now - 24 h, doses_from) to now + horizon, as DOSE_COLUMNS tuples."""
    from .services import schedule_of

    if plan.as_needed or plan.status != PlanStatus.ACTIVE:
        return []
    window_start = max(start or now - LOOK_BACK, plan.doses_from)
    try:
        instants = occurrences(schedule_of(plan), zone=zone, start=window_start, end=now + horizon())
    except ScheduleError:  # saved before a rule tightened: nothing to remind of, rather than a crashed job
        return []
    scheduled = DoseStatus.SCHEDULED.value
    return [
        (uuid.uuid4(), plan.pk, plan.patient_id, at, local_date_of(at, zone), plan.dose, scheduled, False, "", "", now)
        for at in instants
    ]


def planned_doses(plan: MedicationPlan, *, zone: str, now: datetime, start: datetime | None = None) -> list[Dose]:
    """The same doses as unsaved model instances (the demo logs some of them)."""
    return [
        Dose(**dict(zip(DOSE_COLUMNS, row, strict=True))) for row in planned_rows(plan, zone=zone, now=now, start=start)
    ]


def insert_doses(rows: list[tuple]) -> int:
    """Write planned doses, skipping those already there (the unique plan and time). Answers how many were new."""
    if not rows:
        return 0
    if connection.vendor == "postgresql":  # measured: bench/medications.py
        return insert_skipping_conflicts(Dose._meta.db_table, DOSE_COLUMNS, rows)
    doses = [Dose(**dict(zip(DOSE_COLUMNS, row, strict=True))) for row in rows]
    return len(Dose.objects.bulk_create(doses, ignore_conflicts=True))


def materialise_plan(plan: MedicationPlan, *, now: datetime | None = None) -> int:
    return insert_doses(planned_rows(plan, zone=_zone_of(plan), now=now or timezone.now()))


def regenerate_plan(plan: MedicationPlan, *, now: datetime | None = None) -> int:
    """Replace the plan's future doses that are still only scheduled (none are logged yet) with the current schedule."""
    now = now or timezone.now()
    Dose.objects.filter(plan=plan, status=DoseStatus.SCHEDULED, scheduled_at__gt=now).delete()
    return insert_doses(planned_rows(plan, zone=_zone_of(plan), now=now, start=now))


def materialise_due(*, now: datetime | None = None) -> int:
    """The beat job: the next doses of every active scheduled plan. Answers how many new doses were written."""
    now = now or timezone.now()
    today = now.date()
    plans = (
        MedicationPlan.objects.active()
        .filter(as_needed=False, start_date__lte=today + timedelta(days=3))
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=today - timedelta(days=2)))
        # Only what the expansion reads, and the patient's zone: the job loads every active plan.
        .only(*SCHEDULE_FIELDS)
        .annotate(zone=Coalesce("patient__profile__timezone", Value("UTC")))
        .order_by("pk")
    )
    written = 0
    last = None
    while True:
        page = plans.filter(pk__gt=last) if last is not None else plans
        batch = list(page[:BATCH])
        if not batch:
            return written
        written += insert_doses([row for plan in batch for row in planned_rows(plan, zone=plan.zone, now=now)])
        last = batch[-1].pk


def mark_missed(*, now: datetime | None = None) -> int:
    """Scheduled doses not logged within the grace window become missed. One UPDATE; running it twice is a no-op."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.MEDICATION_DOSE_GRACE_MINUTES)
    return Dose.objects.filter(status=DoseStatus.SCHEDULED, scheduled_at__lt=cutoff).update(status=DoseStatus.MISSED)


def complete_ended_plans(*, now: datetime | None = None) -> int:
    """Active plans whose end date has passed everywhere on Earth (two days ago in UTC) become completed."""
    now = now or timezone.now()
    return (
        MedicationPlan.objects.active()
        .filter(end_date__lt=now.date() - timedelta(days=1))
        .update(status=PlanStatus.COMPLETED, status_changed_at=now)
    )


def send_dose_reminders(*, now: datetime | None = None) -> int:
    """The beat job: one reminder per patient for their doses due now. Answers the number of doses reminded."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.MEDICATION_DOSE_GRACE_MINUTES)
    with transaction.atomic():
        due = list(
            Dose.objects.filter(
                status=DoseStatus.SCHEDULED,
                reminded_at__isnull=True,
                scheduled_at__lte=now,
                scheduled_at__gte=cutoff,
                plan__status=PlanStatus.ACTIVE,
            )
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("plan", "patient")
            .order_by("scheduled_at")[:REMINDER_BATCH]
        )
        if not due:
            return 0
        Dose.objects.filter(pk__in=[dose.pk for dose in due]).update(reminded_at=now)
        by_patient: dict = defaultdict(list)
        for dose in due:
            by_patient[dose.patient_id].append(dose)
        for patient_doses in by_patient.values():
            events.doses_due(patient_doses)
    return len(due)


def check_refill(plan: MedicationPlan) -> bool:
    """Remind the patient once when stock is at or below the plan's refill threshold (claimed on the plan row)."""
    if plan.stock is None or plan.refill_threshold is None or plan.stock > plan.refill_threshold:
        return False
    if plan.status != PlanStatus.ACTIVE:
        return False
    stamp = timezone.now()
    claimed = MedicationPlan.objects.filter(
        pk=plan.pk, refill_reminded_at__isnull=True, stock__lte=plan.refill_threshold
    ).update(refill_reminded_at=stamp)
    if claimed:
        plan.refill_reminded_at = stamp
        events.refill_needed(plan)
    return bool(claimed)


def send_refill_reminders() -> int:
    """The beat job's sweep for plans that reached their threshold without a dose being logged (e.g. made low)."""
    plans = (
        MedicationPlan.objects.active()
        .filter(refill_reminded_at__isnull=True, stock__isnull=False, refill_threshold__isnull=False)
        .filter(stock__lte=F("refill_threshold"))
        .select_related("patient")[:REMINDER_BATCH]
    )
    sent = 0
    for plan in plans:
        with transaction.atomic():
            sent += check_refill(plan)
    return sent
