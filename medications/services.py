"""Writes and rules of medications: plans with their revisions and safety findings, stock, and logging doses.

A plan is saved with the findings of the safety checks (medications/safety.py: interactions with the patient's other
active plans, allergies, duplicate therapy). A severe finding (contraindicated or major) is refused unless the request
acknowledges it (`acknowledge_findings`); what was acknowledged is kept in the revision. Every change is a revision
row: who, when, which fields from what to what. A change of schedule regenerates the future doses not yet logged.

Logging a dose is a compare-and-swap on its status, so a dose cannot be taken twice, and the plan row is locked while
stock is decremented and, for as-needed doses, while the day's count is checked against the maximum.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from config.errors import ConflictError, field_error

from . import doses, events, safety
from .models import Dose, DoseStatus, Medication, MedicationPlan, PlanRevision, PlanStatus, Timing
from .schedule import Schedule, ScheduleError, parse_times, validate

# Fields whose change is a revision; of those, the ones that move the doses.
TRACKED_FIELDS = (
    "medication",
    "name",
    "dose",
    "dose_unit",
    "route",
    "times",
    "days_of_week",
    "interval_hours",
    "rrule",
    "timing",
    "as_needed",
    "max_doses_per_day",
    "start_date",
    "end_date",
    "instructions",
    "prescriber",
    "prescriber_name",
    "stock",
    "refill_threshold",
    "status",
)
SCHEDULE_FIELDS = frozenset(
    {"times", "days_of_week", "interval_hours", "rrule", "timing", "as_needed", "start_date", "end_date", "dose"}
)
# Allowed status changes through PATCH (DELETE discontinues; a discontinued plan stays so).
STATUS_CHANGES = {
    PlanStatus.ACTIVE: {PlanStatus.PAUSED, PlanStatus.COMPLETED, PlanStatus.DISCONTINUED},
    PlanStatus.PAUSED: {PlanStatus.ACTIVE, PlanStatus.COMPLETED, PlanStatus.DISCONTINUED},
    PlanStatus.COMPLETED: {PlanStatus.ACTIVE},
    PlanStatus.DISCONTINUED: set(),
}


def patient_zone(patient: User) -> str:
    profile = getattr(patient, "profile", None)
    return profile.timezone if profile is not None else "UTC"


def schedule_of(plan: MedicationPlan) -> Schedule:
    """The plan's schedule as the pure core's value (times as stored strings are parsed there)."""
    return Schedule(
        start_date=plan.start_date,
        end_date=plan.end_date,
        times=parse_times(list(plan.times or [])),
        days_of_week=tuple(plan.days_of_week or ()),
        interval_hours=plan.interval_hours,
        rrule=plan.rrule,
        timing=plan.timing,
        anchor_timezone=plan.anchor_timezone,
    )


def _check_schedule(plan: MedicationPlan) -> None:
    if plan.as_needed:
        if plan.is_scheduled:
            raise field_error(
                "as_needed", "An as-needed plan has no schedule: leave times, interval_hours and rrule empty."
            )
        return
    if plan.max_doses_per_day is not None and not plan.as_needed:
        raise field_error("max_doses_per_day", "Only an as-needed plan has a daily maximum.")
    if not plan.is_scheduled:
        raise field_error("times", "A plan needs a schedule (times, interval_hours or rrule) unless it is as needed.")
    try:
        validate(schedule_of(plan))
    except ScheduleError as error:
        raise field_error(getattr(error, "field", "schedule") or "schedule", str(error), "invalid_schedule") from None


def _findings_for(plan: MedicationPlan) -> list[safety.Finding]:
    lex = safety.lexicon()
    if plan.medication_id is not None:
        drug = safety.drug_for_medication(plan.medication, label=plan.name, ref=str(plan.pk), lex=lex)
    else:
        drug = safety.drug_for_name(plan.name, ref=str(plan.pk), lex=lex)
    others = safety.active_plan_drugs(patient=plan.patient, exclude_plan_id=plan.pk, lex=lex)
    return safety.check_drug(
        drug, others=others, allergies=safety.patient_allergies(plan.patient), rules=safety.rules(), lexicon=lex
    )


def _require_acknowledged(findings: list[safety.Finding], acknowledged: bool) -> list[dict[str, Any]]:
    severe = [finding for finding in findings if finding.is_severe]
    if severe and not acknowledged:
        raise ConflictError(
            "Severe findings need acknowledgement (send acknowledge_findings: true): "
            + "; ".join(f"{f.code}: {f.summary} ({f.severity})" for f in severe),
            code="unacknowledged_findings",
        )
    return [finding.as_dict() for finding in severe]


def _value(value: Any) -> Any:
    """A field's value as JSON for a revision."""
    if isinstance(value, Decimal):
        return str(value.normalize()) if value == value.to_integral() else str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _snapshot(plan: MedicationPlan) -> dict[str, Any]:
    return {
        name: _value(getattr(plan, f"{name}_id" if name in ("medication", "prescriber") else name))
        for name in TRACKED_FIELDS
    }


@transaction.atomic
def create_plan(
    *, patient: User, actor: User, values: dict[str, Any], acknowledge_findings: bool = False
) -> tuple[MedicationPlan, list[safety.Finding]]:
    """Save a new active plan with its first revision and materialise its next doses. Answers the plan and findings."""
    values = dict(values)
    medication: Medication | None = values.get("medication")
    if medication is not None and not values.get("name"):
        values["name"] = medication.name
    if not values.get("name"):
        raise field_error("name", "Name the medication: a catalog `medication` id or a free-text `name`.", "required")
    now = timezone.now()
    plan = MedicationPlan(
        patient=patient,
        created_by=actor,
        anchor_timezone=patient_zone(patient),
        doses_from=now,
        status=PlanStatus.ACTIVE,
        status_changed_at=now,
        **values,
    )
    if plan.start_date is None:
        plan.start_date = timezone.localdate(now, ZoneInfo(plan.anchor_timezone))
    _check_schedule(plan)
    findings = _findings_for(plan)
    acknowledged = _require_acknowledged(findings, acknowledge_findings)
    plan.full_clean(exclude=["patient", "created_by", "medication", "prescriber"])
    plan.save()
    changes = {name: [None, value] for name, value in _snapshot(plan).items() if value not in (None, "", [], False)}
    PlanRevision.objects.create(plan=plan, number=1, actor=actor, changes=changes, acknowledged_findings=acknowledged)
    doses.materialise_plan(plan, now=now)
    if plan.created_by_id != plan.patient_id:
        events.plan_changed(plan, by=actor, created=True)
    doses.check_refill(plan)
    return plan, findings


@transaction.atomic
def update_plan(
    *, plan: MedicationPlan, actor: User, changes: dict[str, Any], acknowledge_findings: bool = False
) -> list[safety.Finding]:
    """Change a plan: a new revision of what changed; the future untaken doses follow a new schedule or status."""
    locked = MedicationPlan.objects.select_for_update(of=("self",))
    plan = locked.select_related("patient__profile", "medication").get(pk=plan.pk)
    if plan.status == PlanStatus.DISCONTINUED:
        raise ConflictError("A discontinued plan is kept as history; start a new plan instead.", code="discontinued")
    before = _snapshot(plan)
    new_status = changes.pop("status", None)
    for name, value in changes.items():
        setattr(plan, name, value)
    if "medication" in changes and changes["medication"] is not None and "name" not in changes:
        plan.name = changes["medication"].name
    now = timezone.now()
    if new_status is not None and new_status != plan.status:
        if new_status not in STATUS_CHANGES[PlanStatus(plan.status)]:
            raise ConflictError(f"A plan cannot go from {plan.status} to {new_status}.", code="invalid_transition")
        plan.status = new_status
        plan.status_changed_at = now
    _check_schedule(plan)
    findings = _findings_for(plan) if plan.status == PlanStatus.ACTIVE else []
    after = _snapshot(plan)
    diff = {name: [before[name], after[name]] for name in TRACKED_FIELDS if before[name] != after[name]}
    if not diff:
        return findings
    moved = bool(SCHEDULE_FIELDS & diff.keys()) or "status" in diff
    acknowledged = (
        _require_acknowledged(findings, acknowledge_findings) if {"medication", "name", "status"} & diff.keys() else []
    )
    if moved:
        plan.doses_from = now
    if "stock" in diff or "refill_threshold" in diff:
        plan.refill_reminded_at = None
    plan.full_clean(exclude=["patient", "created_by", "medication", "prescriber"])
    plan.revision = F("revision") + 1
    plan.save()
    plan.refresh_from_db(fields=["revision"])
    PlanRevision.objects.create(
        plan=plan, number=plan.revision, actor=actor, changes=diff, acknowledged_findings=acknowledged
    )
    if moved:
        doses.regenerate_plan(plan, now=now)
    if actor.pk != plan.patient_id:
        events.plan_changed(plan, by=actor, created=False)
    doses.check_refill(plan)
    return findings


def discontinue_plan(*, plan: MedicationPlan, actor: User) -> None:
    """DELETE: the plan stops and is kept as history; its future untaken doses go. Discontinuing twice is a no-op."""
    if plan.status == PlanStatus.DISCONTINUED:
        return
    update_plan(plan=plan, actor=actor, changes={"status": PlanStatus.DISCONTINUED}, acknowledge_findings=True)


@transaction.atomic
def refill(*, plan: MedicationPlan, actor: User, quantity: Decimal) -> MedicationPlan:
    """Add stock; a stock back above the threshold re-arms the refill reminder."""
    plan = MedicationPlan.objects.select_for_update().get(pk=plan.pk)
    if plan.status == PlanStatus.DISCONTINUED:
        raise ConflictError("The plan is discontinued.", code="discontinued")
    before = plan.stock
    plan.stock = (plan.stock or Decimal(0)) + quantity
    if plan.refill_threshold is None or plan.stock > plan.refill_threshold:
        plan.refill_reminded_at = None
    plan.revision = F("revision") + 1
    plan.save(update_fields=["stock", "refill_reminded_at", "revision", "updated_at"])
    plan.refresh_from_db(fields=["revision"])
    PlanRevision.objects.create(
        plan=plan, number=plan.revision, actor=actor, changes={"stock": [_value(before), _value(plan.stock)]}
    )
    return plan


# --- Doses ---------------------------------------------------------------------------------------------------------


def _grace() -> timedelta:
    return timedelta(minutes=settings.MEDICATION_DOSE_GRACE_MINUTES)


def _early() -> timedelta:
    return timedelta(minutes=settings.MEDICATION_DOSE_EARLY_MINUTES)


def _check_taken_at(taken_at: datetime, now: datetime) -> None:
    if taken_at > now + timedelta(minutes=5):
        raise field_error("taken_at", "A dose cannot be logged as taken in the future.", "in_future")


def _use_stock(plan: MedicationPlan, quantity: Decimal) -> None:
    if plan.stock is not None:
        plan.stock = max(plan.stock - quantity, Decimal(0))
        plan.save(update_fields=["stock", "updated_at"])
        doses.check_refill(plan)


@transaction.atomic
def take_dose(*, dose: Dose, actor: User, taken_at: datetime | None = None, note: str = "") -> Dose:
    """Log a scheduled dose as taken (also late, once it was marked missed); stock goes down by the dose."""
    now = timezone.now()
    taken_at = taken_at or now
    _check_taken_at(taken_at, now)
    plan = MedicationPlan.objects.select_for_update().get(pk=dose.plan_id)
    dose = Dose.objects.select_for_update().get(pk=dose.pk)
    if dose.status == DoseStatus.TAKEN:
        raise ConflictError("This dose is already logged as taken.", code="already_taken")
    if dose.status == DoseStatus.SKIPPED:
        raise ConflictError("This dose is logged as skipped.", code="already_skipped")
    if dose.scheduled_at is not None:
        if now < dose.scheduled_at - _early():
            raise ConflictError(
                f"This dose is not due until {dose.scheduled_at.isoformat()}: it can be taken from "
                f"{settings.MEDICATION_DOSE_EARLY_MINUTES} minutes before.",
                code="not_due",
            )
        if taken_at < dose.scheduled_at - _early():
            raise field_error("taken_at", "Earlier than this dose's window.", "before_window")
    late = dose.status == DoseStatus.MISSED or (
        dose.scheduled_at is not None and taken_at > dose.scheduled_at + _grace()
    )
    dose.status = DoseStatus.TAKEN
    dose.taken_at = taken_at
    dose.late = late
    dose.note = note
    dose.logged_at = now
    dose.logged_by = actor
    dose.save(update_fields=["status", "taken_at", "late", "note", "logged_at", "logged_by"])
    _use_stock(plan, dose.quantity)
    return dose


@transaction.atomic
def skip_dose(*, dose: Dose, actor: User, reason: str, note: str = "") -> Dose:
    now = timezone.now()
    dose = Dose.objects.select_for_update().get(pk=dose.pk)
    if dose.status == DoseStatus.TAKEN:
        raise ConflictError("This dose is already logged as taken.", code="already_taken")
    if dose.status == DoseStatus.SKIPPED:
        raise ConflictError("This dose is already logged as skipped.", code="already_skipped")
    if dose.scheduled_at is not None and now < dose.scheduled_at - _early():
        raise ConflictError(f"This dose is not due until {dose.scheduled_at.isoformat()}.", code="not_due")
    dose.status = DoseStatus.SKIPPED
    dose.skip_reason = reason
    dose.note = note
    dose.logged_at = now
    dose.logged_by = actor
    dose.save(update_fields=["status", "skip_reason", "note", "logged_at", "logged_by"])
    return dose


@transaction.atomic
def log_as_needed_dose(
    *,
    plan: MedicationPlan,
    actor: User,
    taken_at: datetime | None = None,
    quantity: Decimal | None = None,
    note: str = "",
) -> Dose:
    """An as-needed (PRN) dose, refused (409) at the plan's daily maximum for the patient's local day."""
    now = timezone.now()
    taken_at = taken_at or now
    _check_taken_at(taken_at, now)
    plan = MedicationPlan.objects.select_for_update(of=("self",)).select_related("patient__profile").get(pk=plan.pk)
    if not plan.as_needed:
        raise ConflictError(
            "Only an as-needed plan takes logged doses; take its scheduled doses.", code="not_as_needed"
        )
    if plan.status != PlanStatus.ACTIVE:
        raise ConflictError(f"The plan is {plan.status}.", code="plan_not_active")
    local_date = timezone.localtime(taken_at, ZoneInfo(patient_zone(plan.patient))).date()
    if plan.max_doses_per_day is not None:
        today = Dose.objects.filter(plan=plan, scheduled_at__isnull=True, local_date=local_date).count()
        if today >= plan.max_doses_per_day:
            raise ConflictError(
                f"The daily maximum of {plan.max_doses_per_day} doses for {local_date.isoformat()} is reached.",
                code="daily_maximum",
            )
    dose = Dose.objects.create(
        plan=plan,
        patient=plan.patient,
        scheduled_at=None,
        local_date=local_date,
        status=DoseStatus.TAKEN,
        quantity=quantity if quantity is not None else plan.dose,
        taken_at=taken_at,
        note=note,
        logged_at=now,
        logged_by=actor,
    )
    _use_stock(plan, dose.quantity)
    return dose


def timezone_changed(*, patient: User) -> int:
    """The patient's timezone changed: clock-time plans move to the new wall clock (future untaken doses only)."""
    now = timezone.now()
    count = 0
    plans = MedicationPlan.objects.active().filter(patient=patient, timing=Timing.CLOCK, as_needed=False)
    for plan in plans.select_related("patient__profile"):
        with transaction.atomic():
            MedicationPlan.objects.filter(pk=plan.pk).update(doses_from=now)
            plan.doses_from = now
            doses.regenerate_plan(plan, now=now)
        count += 1
    return count
