"""Thin beat tasks: each calls one job of medications/doses.py, which says how it stays idempotent."""

from __future__ import annotations

from celery import shared_task

from . import doses


@shared_task
def materialise_doses_task() -> int:
    """Beat: the next 48 h of doses of every active plan. Idempotent: a unique (plan, scheduled time) key."""
    return doses.materialise_due()


@shared_task
def mark_missed_doses_task() -> int:
    """Beat: doses not logged within the grace window become missed (one conditional UPDATE)."""
    return doses.mark_missed()


@shared_task
def send_dose_reminders_task() -> int:
    """Beat: remind patients of doses due now, once (rows claimed with SKIP LOCKED and `reminded_at`)."""
    return doses.send_dose_reminders()


@shared_task
def send_refill_reminders_task() -> int:
    """Beat: remind of plans at or below their refill threshold, once per threshold crossing (claimed on the plan)."""
    return doses.send_refill_reminders()


@shared_task
def complete_ended_plans_task() -> int:
    """Beat: active plans past their end date become completed."""
    return doses.complete_ended_plans()


@shared_task
def timezone_changed_task(patient_id: str) -> int:
    """A patient's timezone changed: their clock-time plans' future untaken doses move to the new wall clock."""
    from accounts.models import User

    from .services import timezone_changed

    patient = User.objects.filter(pk=patient_id).first()
    return timezone_changed(patient=patient) if patient is not None else 0
