"""The one seam through which medications leave this app: notification kinds and `notify()` calls.

No text names a medication, a dose or a stock level: which medicines someone takes says as much as a diagnosis, and
the same payload feeds webhooks. The inbox says that something is due; the app shows what. The kinds are registered
here (from AppConfig.ready), since notifications knows no domain app.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from accounts.models import Scope
from notifications import kinds
from notifications.models import Channel, Severity
from notifications.services import notify

if TYPE_CHECKING:
    from accounts.models import User

    from .models import Dose, MedicationPlan

CHANNELS = (Channel.IN_APP, Channel.PUSH)

KINDS = (
    kinds.Kind(
        "medication_due",
        "Medication reminder",
        Severity.INFO,
        CHANNELS,
        mutable=True,
        title="Time for your medication",
        body="{count_text} due now. Open the app to log {them}.",
        neutral="OpenVitals: it is time for your medication.",
    ),
    kinds.Kind(
        "medication_refill",
        "Medication refill reminder",
        Severity.INFO,
        (*CHANNELS, Channel.EMAIL),
        mutable=True,
        title="Time to refill",
        body="One of your medications is running low. Open the app to see which.",
        neutral="OpenVitals: one of your medications needs a refill.",
    ),
    kinds.Kind(
        "medication_plan_changed",
        "Medication plan changed by your care team",
        Severity.INFO,
        (*CHANNELS, Channel.EMAIL),
        mutable=True,
        title="Your medications were updated",
        body="A member of your care team {verb} a medication plan.",
        neutral="OpenVitals: your care team updated your medications.",
    ),
)


def register_kinds() -> None:
    for kind in KINDS:
        if kind.code not in kinds.KINDS:
            kinds.register(kind)


def doses_due(doses: Sequence[Dose]) -> None:
    """One reminder for one patient's doses due together."""
    patient = doses[0].patient
    count = len(doses)
    notify(
        "medication_due",
        recipients=[patient],
        about=patient,
        payload={
            "url": "/api/v1/medications/doses/?status=scheduled",
            "dose_ids": [str(dose.pk) for dose in doses],
            "count": count,
            "count_text": "1 dose is" if count == 1 else f"{count} doses are",
            "them": "it" if count == 1 else "them",
        },
        dedupe_key="doses:" + ",".join(sorted(str(dose.pk) for dose in doses)),
    )


def refill_needed(plan: MedicationPlan) -> None:
    notify(
        "medication_refill",
        recipients=[plan.patient],
        about=plan.patient,
        payload={"object_id": str(plan.pk), "url": f"/api/v1/medications/{plan.pk}/"},
        dedupe_key=f"plan:{plan.pk}:refill:{plan.refill_reminded_at.isoformat() if plan.refill_reminded_at else ''}",
    )


def plan_changed(plan: MedicationPlan, *, by: User, created: bool) -> None:
    """A clinician made or changed the patient's plan: the patient is told (and the care team's webhooks)."""
    notify(
        "medication_plan_changed",
        recipients=[plan.patient],
        about=plan.patient,
        scope=Scope.MEDICATIONS,
        payload={
            "object_id": str(plan.pk),
            "url": f"/api/v1/medications/{plan.pk}/",
            "verb": "added" if created else "changed",
            "revision": plan.revision,
        },
        dedupe_key=f"plan:{plan.pk}:revision:{plan.revision}",
    )
