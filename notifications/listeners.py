"""What notifications does with events of apps below it (accounts), registered in apps.py."""

from __future__ import annotations

from accounts.models import CareTeamGrant

from .services import notify


def _patient_name(grant: CareTeamGrant) -> str:
    patient = grant.patient
    return f"{patient.first_name} {patient.last_name}".strip() or "A patient"


def care_team_granted(*, grant: CareTeamGrant) -> None:
    notify(
        "care_team_granted",
        recipients=[grant.clinician],
        about=grant.patient,
        payload={"patient_name": _patient_name(grant), "scopes": ", ".join(grant.scopes)},
        dedupe_key=f"grant:{grant.pk}:granted",
    )


def care_team_revoked(*, grant: CareTeamGrant) -> None:
    notify(
        "care_team_revoked",
        recipients=[grant.clinician],
        about=grant.patient,
        payload={"patient_name": _patient_name(grant)},
        dedupe_key=f"grant:{grant.pk}:revoked",
    )
