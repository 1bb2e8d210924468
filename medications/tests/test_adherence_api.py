"""adherence/ and stats/ over hand-made histories, for the patient and a consented clinician; the score's part."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AccessLog, Scope
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory
from conftest import bearer
from health_metrics.scoring import compute_health_score
from medications.models import Dose, DoseStatus
from medications.tests.factories import MedicationPlanFactory

pytestmark = pytest.mark.django_db

START = date(2026, 6, 1)


def history(plan, statuses: list[str], *, late: set[int] = frozenset()) -> None:  # noqa: ANN001
    """One 08:00 UTC dose a day from START, with the given statuses (taken ones taken at 08:10, or 10:00 if late)."""
    for day, status in enumerate(statuses):
        at = datetime.combine(START + timedelta(days=day), time(8), tzinfo=UTC)
        taken = at + timedelta(minutes=120 if day in late else 10) if status == DoseStatus.TAKEN else None
        Dose.objects.create(
            plan=plan,
            patient=plan.patient,
            scheduled_at=at,
            local_date=at.date(),
            status=status,
            quantity=Decimal(1),
            taken_at=taken,
            late=day in late,
        )


def prn(plan, day: int) -> None:  # noqa: ANN001
    at = datetime.combine(START + timedelta(days=day), time(15), tzinfo=UTC)
    Dose.objects.create(
        plan=plan, patient=plan.patient, local_date=at.date(), status="taken", quantity=Decimal(1), taken_at=at
    )


T, M, S = DoseStatus.TAKEN, DoseStatus.MISSED, DoseStatus.SKIPPED


def test_adherence_counts_and_pdc_per_plan_and_overall(user):
    steady = MedicationPlanFactory(patient=user, name="Steady", start_date=START)
    patchy = MedicationPlanFactory(patient=user, name="Patchy", start_date=START)
    as_needed = MedicationPlanFactory(patient=user, name="Reliever", times=[], as_needed=True, start_date=START)
    history(steady, [T] * 9 + [M], late={2})
    history(patchy, [T, M, T, S, T, M, T, T, T, T])
    prn(as_needed, 3)
    prn(as_needed, 4)

    response = bearer(APIClient(), user).get(
        "/api/v1/medications/adherence/", {"start_date": "2026-06-01", "end_date": "2026-06-10"}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    plans = {row["name"]: row for row in body["plans"]}
    assert (plans["Steady"]["taken"], plans["Steady"]["late"], plans["Steady"]["missed"]) == (9, 1, 1)
    assert plans["Steady"]["pdc"] == 0.9
    assert plans["Steady"]["adherent"] is True
    assert (plans["Patchy"]["taken"], plans["Patchy"]["missed"], plans["Patchy"]["skipped"]) == (7, 2, 1)
    assert plans["Patchy"]["pdc"] == 0.7
    assert plans["Patchy"]["adherent"] is False
    assert plans["Reliever"]["as_needed"] == 2
    assert plans["Reliever"]["pdc"] is None
    overall = body["overall"]
    assert (overall["taken"], overall["missed"], overall["skipped"], overall["as_needed"]) == (16, 3, 1, 2)
    assert overall["days_in_period"] == 10
    assert overall["days_covered"] == 6  # days 2, 4, 6 and 10 have a missed or skipped dose in some plan
    assert overall["pdc"] == 0.6


def test_a_consented_clinician_reads_adherence_and_it_is_logged(user):
    doctor = ClinicianFactory()
    CareTeamGrantFactory(patient=user, clinician=doctor, scopes=[Scope.MEDICATIONS])
    history(MedicationPlanFactory(patient=user, start_date=START), [T, T])
    client = bearer(APIClient(), doctor)

    response = client.get(
        "/api/v1/medications/adherence/",
        {"patient": str(user.pk), "start_date": "2026-06-01", "end_date": "2026-06-02"},
    )

    assert response.status_code == 200
    assert response.json()["overall"]["pdc"] == 1.0
    assert AccessLog.objects.filter(actor=doctor, patient=user).exists()


def test_a_clinician_without_the_scope_gets_404(user):
    doctor = ClinicianFactory()
    CareTeamGrantFactory(patient=user, clinician=doctor, scopes=[Scope.METRICS])

    response = bearer(APIClient(), doctor).get("/api/v1/medications/adherence/", {"patient": str(user.pk)})

    assert response.status_code == 404


def test_a_range_ending_before_it_starts_is_a_400(user):
    response = bearer(APIClient(), user).get(
        "/api/v1/medications/adherence/", {"start_date": "2026-06-10", "end_date": "2026-06-01"}
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "end_date"


def test_stats_show_active_plans_refills_and_today(user):
    MedicationPlanFactory(patient=user, name="Low", stock=Decimal(2), refill_threshold=Decimal(5))
    MedicationPlanFactory(patient=user, name="Fine", stock=Decimal(50), refill_threshold=Decimal(5))
    MedicationPlanFactory(patient=user, name="Old", status="discontinued")
    plan = MedicationPlanFactory(patient=user)
    now = timezone.now()
    Dose.objects.create(plan=plan, patient=user, scheduled_at=now, local_date=now.date(), quantity=Decimal(1))

    body = bearer(APIClient(), user).get("/api/v1/medications/stats/").json()

    assert body["active"] == 3
    assert [row["name"] for row in body["needing_refill"]] == ["Low"]
    assert body["today"] == {"scheduled": 1, "taken": 0, "pending": 1}


def test_the_health_score_gains_an_adherence_part(user):
    plan = MedicationPlanFactory(patient=user, start_date=START)
    day = START + timedelta(days=1)
    for hour, status in ((8, T), (14, T), (20, M)):
        at = datetime.combine(day, time(hour), tzinfo=UTC)
        Dose.objects.create(
            plan=plan,
            patient=user,
            scheduled_at=at,
            local_date=day,
            status=status,
            quantity=Decimal(1),
            taken_at=at if status == T else None,
        )

    score = compute_health_score(user=user, local_date=day)

    part = next(p for p in score.parts if p["name"] == "medication_adherence")
    assert part["score"] == 67
    assert part["detail"] == "2 of 3 doses taken"
    assert score.score == 67  # the only part with data that day


def test_a_discontinued_plan_counts_until_it_stopped(user):
    stopped = datetime.combine(START + timedelta(days=4), time(12), tzinfo=UTC)
    plan = MedicationPlanFactory(patient=user, start_date=START, status="discontinued", status_changed_at=stopped)
    history(plan, [T] * 5)

    body = (
        bearer(APIClient(), user)
        .get("/api/v1/medications/adherence/", {"start_date": "2026-06-01", "end_date": "2026-06-10"})
        .json()
    )

    row = body["plans"][0]
    assert (row["days_in_period"], row["days_covered"], row["pdc"]) == (5, 5, 1.0)
    assert (body["overall"]["days_in_period"], body["overall"]["pdc"]) == (5, 1.0)
