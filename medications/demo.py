"""Demo medications (settings.DEMO_SEEDERS): plans for the demo patients with 30 days of dose history.

Alice (hypertension, allergic to penicillin) takes lisinopril and warfarin, and has ibuprofen as needed: the
warfarin-NSAID interaction is a severe finding, acknowledged when the plan was made (the demo's interaction
warning). Bob's metformin twice a day was prescribed by his endocrinologist (a consented clinician); his
atorvastatin is running low, so it needs a refill. Carmen has a daily inhaled steroid and a reliever as needed.

Plans go through services.create_plan (findings, revisions, prescriber); their past doses come from the same
schedule expansion as the beat job's, over the last 30 days, and are logged with a fixed random seed per plan:
mostly on time, some late, some missed, a few skipped. Safe to run twice: a patient who has plans is skipped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from accounts.models import User

from . import doses, services
from .models import Dose, DoseStatus, Medication, MedicationPlan

HISTORY_DAYS = 30


@dataclass(frozen=True)
class DemoPlan:
    patient: str
    ingredient: str  # the catalog product is the first one with this ingredient; else the name is free text
    name: str
    dose: str
    unit: str
    times: tuple[str, ...] = ()
    as_needed: bool = False
    max_per_day: int | None = None
    stock: int = 60
    refill_threshold: int = 10
    prescriber: str | None = None
    instructions: str = ""
    # Chances per scheduled dose: missed, late (taken after the grace window), skipped.
    missed: float = 0.06
    late: float = 0.08
    skipped: float = 0.02
    prn_per_week: int = 0


PLANS = [
    DemoPlan(
        "alice@openvitals.local",
        "lisinopril",
        "Lisinopril 10 mg",
        "1",
        "tablet",
        ("08:00",),
        instructions="Take in the morning, with or without food.",
    ),
    DemoPlan(
        "alice@openvitals.local",
        "warfarin",
        "Warfarin 5 mg",
        "1",
        "tablet",
        ("18:00",),
        missed=0.1,
        instructions="Same time every evening. INR check monthly.",
    ),
    DemoPlan(
        "alice@openvitals.local",
        "ibuprofen",
        "Ibuprofen 200 mg",
        "1",
        "tablet",
        as_needed=True,
        max_per_day=3,
        prn_per_week=2,
        instructions="For headaches; ask your clinician about the warning.",
    ),
    DemoPlan(
        "bob@openvitals.local",
        "metformin",
        "Metformin 500 mg",
        "1",
        "tablet",
        ("08:00", "20:00"),
        prescriber="dr.okafor@openvitals.local",
        missed=0.08,
        late=0.12,
        instructions="With meals.",
    ),
    DemoPlan(
        "bob@openvitals.local",
        "atorvastatin",
        "Atorvastatin 20 mg",
        "1",
        "tablet",
        ("21:00",),
        stock=5,
        refill_threshold=7,
    ),
    DemoPlan(
        "carmen@openvitals.local",
        "fluticasone",
        "Fluticasone inhaler",
        "2",
        "puff",
        ("08:00", "20:00"),
        stock=120,
        refill_threshold=30,
        missed=0.12,
        instructions="Rinse your mouth after use.",
    ),
    DemoPlan(
        "carmen@openvitals.local",
        "albuterol",
        "Albuterol inhaler",
        "2",
        "puff",
        as_needed=True,
        max_per_day=8,
        stock=200,
        refill_threshold=40,
        prn_per_week=3,
    ),
]


def _medication(ingredient: str) -> Medication | None:
    return Medication.objects.filter(ingredients__name=ingredient, active=True).order_by("name", "pk").first()


def _history(plan: MedicationPlan, spec: DemoPlan, *, now: Any, zone: str) -> int:
    """Dose rows for the last HISTORY_DAYS, logged as a real patient would have (the stock given is today's)."""
    chance = random.Random(f"{plan.patient.email}:{spec.name}")  # noqa: S311 (demo data, not security)
    start = now - timedelta(days=HISTORY_DAYS)
    grace = timedelta(minutes=90)
    rows: list[Dose] = []
    if spec.as_needed:
        for day in range(HISTORY_DAYS):
            if chance.random() < spec.prn_per_week / 7:
                taken = start + timedelta(days=day, hours=chance.randint(9, 20), minutes=chance.randint(0, 59))
                rows.append(
                    Dose(
                        plan=plan,
                        patient=plan.patient,
                        scheduled_at=None,
                        quantity=plan.dose,
                        taken_at=taken,
                        local_date=timezone.localtime(taken, ZoneInfo(zone)).date(),
                        status=DoseStatus.TAKEN,
                        logged_at=taken,
                        logged_by=plan.patient,
                    )
                )
    else:
        for dose in doses.planned_doses(plan, zone=zone, now=now, start=start):
            if dose.scheduled_at >= now:
                continue
            roll = chance.random()
            dose.plan, dose.patient = plan, plan.patient
            if roll < spec.missed:
                dose.status = DoseStatus.MISSED
            elif roll < spec.missed + spec.skipped:
                dose.status, dose.skip_reason = DoseStatus.SKIPPED, "Felt unwell"
                dose.logged_at = dose.scheduled_at + timedelta(minutes=20)
            else:
                is_late = roll < spec.missed + spec.skipped + spec.late
                offset = (
                    grace + timedelta(minutes=chance.randint(0, 120))
                    if is_late
                    else timedelta(minutes=chance.randint(-15, 40))
                )
                dose.status, dose.taken_at, dose.late = DoseStatus.TAKEN, dose.scheduled_at + offset, is_late
                dose.logged_at, dose.logged_by = dose.taken_at, plan.patient
            dose.reminded_at = dose.scheduled_at
            rows.append(dose)
    Dose.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def seed_demo_medications(*, stdout) -> None:  # noqa: ANN001
    now = timezone.now()
    people = {u.email: u for u in User.objects.filter(email__endswith="@openvitals.local").select_related("profile")}
    made = rows = 0
    seeded = {email for email in people if MedicationPlan.objects.filter(patient=people[email]).exists()}
    for spec in PLANS:
        patient = people.get(spec.patient)
        if patient is None or spec.patient in seeded:
            continue
        zone = services.patient_zone(patient)
        actor = people.get(spec.prescriber, patient) if spec.prescriber else patient
        medication = _medication(spec.ingredient)
        values: dict[str, Any] = {
            "medication": medication,
            "name": spec.name,
            "dose": Decimal(spec.dose),
            "dose_unit": spec.unit,
            "times": list(spec.times),
            "as_needed": spec.as_needed,
            "max_doses_per_day": spec.max_per_day,
            "start_date": (now - timedelta(days=HISTORY_DAYS)).date(),
            "instructions": spec.instructions,
            "stock": Decimal(spec.stock),
            "refill_threshold": Decimal(spec.refill_threshold),
        }
        if actor.pk != patient.pk:
            values |= {"prescriber": actor, "prescriber_name": actor.get_full_name()}
        with transaction.atomic():
            plan, _ = services.create_plan(patient=patient, actor=actor, values=values, acknowledge_findings=True)
            # The plan began a month ago: its history is materialised from then, then logged.
            MedicationPlan.objects.filter(pk=plan.pk).update(doses_from=now - timedelta(days=HISTORY_DAYS))
            plan.refresh_from_db()
            count = _history(plan, spec, now=now, zone=zone)
        made += 1
        rows += count
    stdout.write(f"  medications: {made} plans with {rows} past doses created ({len(seeded)} patients had plans)")
