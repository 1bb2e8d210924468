"""Reads of medications: adherence over a range, the stats card, and the health score's adherence part.

Adherence loads the doses once, as plain values, and hands them to the pure core (medications/adherence.py). The
carry-forward of a weekly plan's dose needs the dose days before the range, so the loader reaches back
CARRY_FORWARD_DAYS before `start`; counts stay within the range.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from health_metrics.scoring import Part
from health_metrics.scoring import register_score_part as _register

from .adherence import DoseEntry, overall_adherence, plan_adherence
from .models import Dose, DoseStatus, MedicationPlan, PlanStatus

CARRY_FORWARD_DAYS = 35
ADHERENCE_WEIGHT = 20  # the score part's base weight, beside vitals 35, activity 25, sleep 25, resting HR 15


def dose_entries(doses: QuerySet[Dose], *, start: date, end: date) -> list[DoseEntry]:
    rows = (
        doses.filter(local_date__gte=start - timedelta(days=CARRY_FORWARD_DAYS), local_date__lte=end)
        .order_by()
        .values_list("plan_id", "local_date", "status", "late", "scheduled_at")
    )
    return [
        DoseEntry(plan_id=str(plan_id), local_date=day, status=status, late=late, as_needed=scheduled_at is None)
        for plan_id, day, status, late, scheduled_at in rows
    ]


def plan_ends(plans: list[MedicationPlan], *, zone: str) -> dict[str, date]:
    """The last local day of each plan that stopped (its end date, or the day it was completed, discontinued or
    paused): its last dose's coverage carries no further."""
    ends = {}
    for plan in plans:
        last = plan.end_date
        if plan.status != PlanStatus.ACTIVE and plan.status_changed_at is not None:
            stopped = timezone.localtime(plan.status_changed_at, ZoneInfo(zone)).date()
            last = min(last, stopped) if last else stopped
        if last is not None:
            ends[str(plan.pk)] = last
    return ends


def adherence_report(
    *, plans: QuerySet[MedicationPlan], doses: QuerySet[Dose], start: date, end: date, zone: str
) -> dict:
    """Per plan and overall, for the plans given that have doses or were active in the range. Two queries."""
    entries = dose_entries(doses.filter(plan__in=plans), start=start, end=end)
    by_plan: dict[str, list[DoseEntry]] = defaultdict(list)
    for entry in entries:
        by_plan[entry.plan_id].append(entry)
    rows = list(
        plans.filter(
            Q(pk__in={entry.plan_id for entry in entries})
            | Q(status=PlanStatus.ACTIVE, start_date__lte=end) & (Q(end_date__isnull=True) | Q(end_date__gte=start))
        ).order_by("name", "pk")
    )
    ends = plan_ends(rows, zone=zone)
    per_plan = [
        {
            "plan": plan.pk,
            "patient": plan.patient_id,
            "name": plan.name,
            "status": plan.status,
            "as_needed_plan": plan.as_needed,
            **plan_adherence(
                by_plan.get(str(plan.pk), []), start=start, end=min(end, ends.get(str(plan.pk), end))
            ).as_dict(),
        }
        for plan in rows
    ]
    return {
        "start_date": start,
        "end_date": end,
        "overall": overall_adherence(entries, start=start, end=end, plan_ends=ends).as_dict(),
        "plans": per_plan,
    }


def stats(*, plans: QuerySet[MedicationPlan], doses: QuerySet[Dose], today: date, zone: str) -> dict[str, Any]:
    """Active plans, those needing a refill, today's doses and the adherence of the last 7 days (today included)."""
    active = plans.filter(status=PlanStatus.ACTIVE)
    refill = active.filter(stock__isnull=False, refill_threshold__isnull=False, stock__lte=F("refill_threshold"))
    week_start = today - timedelta(days=6)
    entries = dose_entries(doses.filter(plan__in=plans), start=week_start, end=today)
    stopped = plans.exclude(status=PlanStatus.ACTIVE).filter(
        status_changed_at__date__gte=week_start - timedelta(days=1)
    )
    ends = plan_ends(list(stopped) + list(plans.filter(end_date__gte=week_start, end_date__lte=today)), zone=zone)
    todays = [entry for entry in entries if entry.local_date == today and not entry.as_needed]
    return {
        "active": active.count(),
        "needing_refill": [
            {"plan": plan_id, "name": name, "stock": stock, "refill_threshold": threshold}
            for plan_id, name, stock, threshold in refill.order_by("name").values_list(
                "pk", "name", "stock", "refill_threshold"
            )
        ],
        "today": {
            "scheduled": len(todays),
            "taken": sum(entry.status == DoseStatus.TAKEN for entry in todays),
            "pending": sum(entry.status == DoseStatus.SCHEDULED for entry in todays),
        },
        "adherence_this_week": overall_adherence(entries, start=week_start, end=today, plan_ends=ends).as_dict(),
    }


# --- The health score's adherence part (health_metrics/scoring.py's registry) ---------------------------------------


def adherence_part_from(statuses: list[str]) -> Part:
    """The day's scheduled doses that are decided (taken, late, skipped, missed): the share taken, 0-100."""
    decided = [status for status in statuses if status != DoseStatus.SCHEDULED]
    if not decided:
        return Part("medication_adherence", None, "no scheduled doses due")
    taken = sum(status == DoseStatus.TAKEN for status in decided)
    return Part(
        "medication_adherence", math.floor(100 * taken / len(decided) + 0.5), f"{taken} of {len(decided)} doses taken"
    )


def adherence_part(*, user: User, local_date: date) -> Part:
    statuses = Dose.objects.filter(patient=user, local_date=local_date, scheduled_at__isnull=False).values_list(
        "status", flat=True
    )
    return adherence_part_from(list(statuses))


def register_score_part() -> None:
    _register(
        name="medication_adherence", label="Medication adherence", weight=ADHERENCE_WEIGHT, compute=adherence_part
    )
