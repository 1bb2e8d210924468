"""Escalation of a critical alert nobody acknowledges.

`notify()` opens an escalation for a kind that `escalates` (a critical health alert), its clock set to the
shortest escalation time of the organizations whose clinicians the patient's grant covers (EscalationPolicy,
default NOTIFICATION_ESCALATION_MINUTES, 15). Each time the clock runs out with the alert still unacknowledged,
the beat job takes one step, in the same transaction as the notifications it writes, on rows it has locked
(`select_for_update(skip_locked=True)`), so two beats never take a step twice:

1. the patient's consented clinicians (an active grant covering the alert's scope) are told again, as an
   `health_alert_escalated` notification on every channel, breaking through quiet hours and digests;
2. the on-call staff of those clinicians' organizations are told.

Each step is recorded on the escalation (when, to whom); after the last one it is `exhausted`. Acknowledging
the alert, or its resolution, closes it (`close`), from the app that owns the alert.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from accounts.models import CareTeamGrant, Role, User

from .models import Escalation, EscalationPolicy, EscalationStatus

LAST_STEP = 2


def subject_for(kind: str, payload: dict[str, Any], dedupe_key: str) -> str:
    return f"{kind}:{payload.get('alert_id') or dedupe_key}"[:200]


def _clinicians(patient: User, scope: str) -> list[User]:
    grants = CareTeamGrant.objects.active().with_scope(scope).filter(patient=patient).select_related("clinician")
    return [grant.clinician for grant in grants]


def _minutes(clinician_ids: list) -> int:
    shortest = EscalationPolicy.objects.filter(organization__clinicians__user__in=clinician_ids).aggregate(
        shortest=Min("minutes")
    )["shortest"]
    return shortest or settings.NOTIFICATION_ESCALATION_MINUTES


def open_escalation(*, subject: str, patient: User, scope: str, payload: dict[str, Any]) -> None:
    """Start the clock for a critical alert (once per subject: a repeated event keeps the first clock)."""
    grants = CareTeamGrant.objects.active().with_scope(scope).filter(patient=patient)
    minutes = _minutes(grants.values("clinician_id"))
    Escalation.objects.bulk_create(
        [
            Escalation(
                subject=subject,
                patient=patient,
                scope=scope,
                payload=payload,
                next_step_at=timezone.now() + timedelta(minutes=minutes),
            )
        ],
        ignore_conflicts=True,
    )


def close(*, subject: str, status: str, by: User | None = None) -> bool:
    """Stop an open escalation: acknowledged (by whom) or resolved. Answers whether one was open."""
    return bool(
        Escalation.objects.filter(subject=subject, status=EscalationStatus.OPEN).update(
            status=status, closed_at=timezone.now(), closed_by=by, next_step_at=None
        )
    )


def escalate_due(*, now: datetime | None = None, limit: int = 100) -> int:
    """The beat job: take the next step of every escalation whose clock has run out. Answers how many."""
    from .services import notify  # services imports this module to open escalations

    now = now or timezone.now()
    taken = 0
    with transaction.atomic():
        due = list(
            Escalation.objects.select_for_update(skip_locked=True)
            .filter(status=EscalationStatus.OPEN, next_step_at__lte=now)
            .select_related("patient")
            .order_by("next_step_at")[:limit]
        )
        for escalation in due:
            step = escalation.step + 1
            clinicians = _clinicians(escalation.patient, escalation.scope)
            minutes = _minutes([clinician.pk for clinician in clinicians])
            if step == 1:
                told = clinicians
            else:
                told = list(
                    User.objects.filter(
                        pk__in=EscalationPolicy.on_call.through.objects.filter(
                            escalationpolicy__organization__clinicians__user__in=[c.pk for c in clinicians]
                        ).values("user_id"),
                        is_active=True,
                        role=Role.STAFF,
                    )
                )
            patient = escalation.patient
            name = f"{patient.first_name} {patient.last_name}".strip() or "a patient"
            notify(
                "health_alert_escalated",
                recipients=told,
                about=patient,
                payload={**escalation.payload, "patient_name": name, "minutes": minutes * step},
                dedupe_key=f"escalation:{escalation.pk}:{step}",
            )
            escalation.steps = [
                *escalation.steps,
                {"step": step, "at": now.isoformat(), "to": [str(user.pk) for user in told]},
            ]
            escalation.step = step
            if step >= LAST_STEP:
                escalation.status, escalation.next_step_at = EscalationStatus.EXHAUSTED, None
            else:
                escalation.next_step_at = now + timedelta(minutes=minutes)
            escalation.save(update_fields=["steps", "step", "status", "next_step_at"])
            taken += 1
    return taken
