"""Doses: take, skip, late logging, as-needed doses against the daily maximum, stock, and the dose jobs."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import bearer
from medications import doses
from medications.models import Dose, DoseStatus, MedicationPlan, PlanStatus, Timing
from medications.tests.factories import DoseFactory, MedicationPlanFactory
from notifications.models import Notification

pytestmark = pytest.mark.django_db

URL = "/api/v1/medications/"


def error(response) -> tuple[str, str | None]:  # noqa: ANN001
    first = response.json()["errors"][0]
    return first["code"], first["attr"]


def due_dose(plan: MedicationPlan, minutes_ago: int = 5, **extra) -> Dose:
    return DoseFactory(plan=plan, scheduled_at=timezone.now() - timedelta(minutes=minutes_ago), **extra)


def test_taking_a_dose_logs_it_and_decrements_stock(user):
    plan = MedicationPlanFactory(patient=user, stock=Decimal(10), dose=Decimal(2))
    dose = due_dose(plan)

    response = bearer(APIClient(), user).post(f"{URL}doses/{dose.pk}/take/", {"note": "with breakfast"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "taken"
    assert body["late"] is False
    assert body["note"] == "with breakfast"
    assert body["taken_at"] is not None
    plan.refresh_from_db()
    assert plan.stock == Decimal(8)


def test_taking_a_dose_twice_is_refused_and_stock_moves_once(user):
    plan = MedicationPlanFactory(patient=user, stock=Decimal(10))
    dose = due_dose(plan)
    client = bearer(APIClient(), user)
    assert client.post(f"{URL}doses/{dose.pk}/take/", {}, format="json").status_code == 200

    again = client.post(f"{URL}doses/{dose.pk}/take/", {}, format="json")

    assert again.status_code == 409
    assert error(again)[0] == "already_taken"
    plan.refresh_from_db()
    assert plan.stock == Decimal(9)


def test_a_dose_far_in_the_future_cannot_be_taken_yet(user):
    dose = DoseFactory(plan=MedicationPlanFactory(patient=user), scheduled_at=timezone.now() + timedelta(hours=5))

    response = bearer(APIClient(), user).post(f"{URL}doses/{dose.pk}/take/", {}, format="json")

    assert response.status_code == 409
    assert error(response)[0] == "not_due"


def test_a_dose_cannot_be_taken_in_the_future(user):
    dose = due_dose(MedicationPlanFactory(patient=user))
    later = (timezone.now() + timedelta(hours=1)).isoformat()

    response = bearer(APIClient(), user).post(f"{URL}doses/{dose.pk}/take/", {"taken_at": later}, format="json")

    assert response.status_code == 400
    assert error(response) == ("in_future", "taken_at")


def test_skipping_needs_a_reason_and_is_kept(user):
    dose = due_dose(MedicationPlanFactory(patient=user, stock=Decimal(5)))
    client = bearer(APIClient(), user)

    assert client.post(f"{URL}doses/{dose.pk}/skip/", {}, format="json").status_code == 400
    response = client.post(f"{URL}doses/{dose.pk}/skip/", {"reason": "Nauseous"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "skipped"
    assert response.json()["skip_reason"] == "Nauseous"
    assert MedicationPlan.objects.get(pk=dose.plan_id).stock == Decimal(5)
    assert client.post(f"{URL}doses/{dose.pk}/take/", {}, format="json").status_code == 409


def test_a_missed_dose_can_be_logged_late_with_its_time(user):
    plan = MedicationPlanFactory(patient=user)
    dose = due_dose(plan, minutes_ago=180)
    assert doses.mark_missed() == 1
    dose.refresh_from_db()
    assert dose.status == DoseStatus.MISSED
    taken_at = dose.scheduled_at + timedelta(minutes=150)

    response = bearer(APIClient(), user).post(
        f"{URL}doses/{dose.pk}/take/", {"taken_at": taken_at.isoformat(), "note": "forgot"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "taken"
    assert response.json()["late"] is True
    assert datetime.fromisoformat(response.json()["taken_at"]) == taken_at


def test_a_dose_taken_after_the_grace_window_is_late_even_before_the_job_marks_it(user):
    dose = due_dose(MedicationPlanFactory(patient=user), minutes_ago=61)

    response = bearer(APIClient(), user).post(f"{URL}doses/{dose.pk}/take/", {}, format="json")

    assert response.json()["late"] is True


def test_marking_missed_twice_changes_nothing_the_second_time(user):
    plan = MedicationPlanFactory(patient=user)
    due_dose(plan, minutes_ago=61)
    due_dose(plan, minutes_ago=30)

    assert doses.mark_missed() == 1
    assert doses.mark_missed() == 0
    assert Dose.objects.filter(status=DoseStatus.MISSED).count() == 1


def test_as_needed_doses_are_checked_against_the_daily_maximum(user):
    plan = MedicationPlanFactory(patient=user, times=[], as_needed=True, max_doses_per_day=2, stock=Decimal(10))
    client = bearer(APIClient(), user)

    first = client.post(f"{URL}{plan.pk}/log/", {"note": "headache"}, format="json")
    second = client.post(f"{URL}{plan.pk}/log/", {"quantity": 2}, format="json")
    third = client.post(f"{URL}{plan.pk}/log/", {}, format="json")

    assert first.status_code == 201, first.content
    assert first.json()["as_needed"] is True
    assert first.json()["scheduled_at"] is None
    assert second.status_code == 201
    assert third.status_code == 409
    assert error(third)[0] == "daily_maximum"
    plan.refresh_from_db()
    assert plan.stock == Decimal(7)
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    assert client.post(f"{URL}{plan.pk}/log/", {"taken_at": yesterday}, format="json").status_code == 201


def test_a_scheduled_plan_takes_no_logged_doses(user):
    plan = MedicationPlanFactory(patient=user)

    response = bearer(APIClient(), user).post(f"{URL}{plan.pk}/log/", {}, format="json")

    assert response.status_code == 409
    assert error(response)[0] == "not_as_needed"


def test_the_dose_list_filters_by_day_and_status_in_constant_queries(user):
    plan = MedicationPlanFactory(patient=user)
    client = bearer(APIClient(), user)
    due_dose(plan, minutes_ago=10)
    with CaptureQueriesContext(connection) as one:
        client.get(f"{URL}doses/")
    for hours in range(2, 12):
        due_dose(plan, minutes_ago=60 * hours)
    with CaptureQueriesContext(connection) as many:
        body = client.get(f"{URL}doses/").json()

    assert body["count"] == 11
    assert len(many) == len(one)
    today = timezone.now().date().isoformat()
    filtered = client.get(f"{URL}doses/", {"status": "scheduled", "start_date": today, "end_date": today}).json()
    assert all(d["local_date"] == today for d in filtered["results"])


# --- The jobs --------------------------------------------------------------------------------------------------


def test_materialising_twice_adds_nothing_the_second_time(user):
    MedicationPlanFactory(patient=user, times=["08:00", "20:00"], doses_from=timezone.now() - timedelta(days=2))
    MedicationPlanFactory(patient=user, times=[], as_needed=True)

    first = doses.materialise_due()
    count = Dose.objects.count()
    doses.materialise_due()

    assert first > 0
    assert Dose.objects.count() == count
    assert not Dose.objects.filter(scheduled_at__isnull=True).exists()


def test_a_new_york_dst_day_has_no_more_doses_than_an_ordinary_day(user):
    user.profile.timezone = "America/New_York"
    user.profile.save()
    start = datetime(2026, 10, 30, tzinfo=UTC)
    MedicationPlanFactory(
        patient=user, times=["01:30", "08:00"], start_date=date(2026, 10, 1), doses_from=start - timedelta(days=1)
    )

    for hour in range(0, 96, 6):  # the beat over four days around the fall-back night, 1 November 2026
        doses.materialise_due(now=start + timedelta(hours=hour))

    per_day: dict[date, int] = {}
    for dose in Dose.objects.all():
        per_day[dose.local_date] = per_day.get(dose.local_date, 0) + 1
    assert per_day[date(2026, 11, 1)] == 2
    assert per_day[date(2026, 10, 31)] == 2


def test_dose_reminders_are_sent_once_per_patient_however_often_the_job_runs(user, other_user):
    plan = MedicationPlanFactory(patient=user)
    second_plan = MedicationPlanFactory(patient=user)
    due_dose(plan)
    due_dose(second_plan, minutes_ago=2)
    due_dose(MedicationPlanFactory(patient=other_user))
    DoseFactory(plan=plan, scheduled_at=timezone.now() + timedelta(minutes=30))  # not due yet
    due_dose(plan, minutes_ago=120)  # past the grace window: too late to remind

    assert doses.send_dose_reminders() == 3
    assert doses.send_dose_reminders() == 0

    mine = Notification.objects.filter(recipient=user, kind="medication_due")
    assert mine.count() == 1
    assert mine.get().body == "2 doses are due now. Open the app to log them."
    assert "Medicine" not in mine.get().title + mine.get().body  # no medication named
    assert Notification.objects.filter(recipient=other_user, kind="medication_due").count() == 1


def test_a_refill_reminder_is_sent_once_when_stock_falls_to_the_threshold(user):
    plan = MedicationPlanFactory(patient=user, stock=Decimal(4), refill_threshold=Decimal(2))
    client = bearer(APIClient(), user)
    for minutes in (5, 10, 15):
        client.post(f"{URL}doses/{due_dose(plan, minutes_ago=minutes).pk}/take/", {}, format="json")

    assert Notification.objects.filter(recipient=user, kind="medication_refill").count() == 1
    assert doses.send_refill_reminders() == 0
    client.post(f"{URL}{plan.pk}/refill/", {"quantity": 30}, format="json")
    MedicationPlan.objects.filter(pk=plan.pk).update(stock=Decimal(1))
    assert doses.send_refill_reminders() == 1
    assert Notification.objects.filter(recipient=user, kind="medication_refill").count() == 2


def test_a_new_timezone_moves_clock_doses_and_leaves_elapsed_ones(user, django_capture_on_commit_callbacks):
    clock = MedicationPlanFactory(patient=user, times=["08:00"])
    elapsed = MedicationPlanFactory(patient=user, times=["08:00"], interval_hours=24, timing=Timing.ELAPSED)
    doses.materialise_plan(clock)
    doses.materialise_plan(elapsed)
    elapsed_before = set(Dose.objects.filter(plan=elapsed).values_list("scheduled_at", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        user.profile.timezone = "Asia/Tokyo"
        user.profile.save()

    clock_times = {d.scheduled_at.astimezone(UTC).time() for d in Dose.objects.filter(plan=clock)}
    assert clock_times == {time(23, 0)}  # 08:00 in Tokyo
    assert set(Dose.objects.filter(plan=elapsed).values_list("scheduled_at", flat=True)) == elapsed_before


def test_plans_past_their_end_date_are_completed(user):
    ended = MedicationPlanFactory(
        patient=user, start_date=date(2026, 1, 1), end_date=timezone.now().date() - timedelta(days=3)
    )
    running = MedicationPlanFactory(patient=user)

    assert doses.complete_ended_plans() == 1
    assert MedicationPlan.objects.get(pk=ended.pk).status == PlanStatus.COMPLETED
    assert MedicationPlan.objects.get(pk=running.pk).status == PlanStatus.ACTIVE
