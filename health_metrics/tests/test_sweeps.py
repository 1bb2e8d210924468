"""The beat jobs that walk many patients: one patient's failure is logged and counted, everyone else is still done.

The failures are real ones: a row the validators never saw (a time zone that does not exist), or the
database refusing one patient's rows (a trigger, standing in for any error that patient's data raises).
"""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Profile
from accounts.tests.factories import UserFactory
from health_metrics.alerts import sweep_anomalies
from health_metrics.catalog import get_catalog
from health_metrics.models import DailySummary, HealthAlert
from health_metrics.scoring import due_health_scores
from health_metrics.services import recompute_daily_summaries, reconcile_daily_summaries
from health_metrics.tests.factories import ReadingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def refuse_rows_of():
    """A trigger making PostgreSQL refuse one patient's rows in one table (the test's transaction drops it)."""

    def install(table: str, user_id) -> None:  # noqa: ANN001
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                CREATE FUNCTION refuse_one_patient() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION 'refused for this patient'; END $$ LANGUAGE plpgsql;
                CREATE TRIGGER refuse_one_patient BEFORE INSERT OR UPDATE ON {table}
                FOR EACH ROW WHEN (NEW.user_id = '{user_id}') EXECUTE FUNCTION refuse_one_patient();
                """
            )

    return install


def failures(caplog, sweep: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if "sweep_item_failed" in r.getMessage() and sweep in r.getMessage()]


def low_glucose(user, minutes_ago: int = 30):
    """Glucose under 54 mg/dL: an alert at once."""
    glucose = get_catalog().resolve("blood_glucose")
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return ReadingFactory(user=user, metric_type_id=glucose.id, value=45, original_unit=glucose.unit, recorded_at=at)


def test_reconciling_rollups_goes_on_past_a_patient_whose_rows_fail(refuse_rows_of, caplog):
    patients = [UserFactory() for _ in range(3)]
    for patient in patients:
        ReadingFactory(user=patient)
    broken = patients[1]
    refuse_rows_of("health_metrics_dailysummary", broken.pk)

    with caplog.at_level(logging.ERROR):
        written = reconcile_daily_summaries()

    assert written == 2
    assert sorted(DailySummary.objects.values_list("user_id", flat=True)) == sorted(
        p.pk for p in patients if p is not broken
    )
    [logged] = failures(caplog, "reconcile_daily_summaries")
    assert str(broken.pk) in logged


def test_the_anomaly_sweep_goes_on_past_a_patient_whose_rows_fail(refuse_rows_of, caplog):
    patients = [UserFactory() for _ in range(3)]
    for patient in patients:
        reading = low_glucose(patient)
        recompute_daily_summaries(user_id=patient.pk, days=[(reading.metric_type_id, reading.local_date)])
    broken = patients[1]
    refuse_rows_of("health_metrics_healthalert", broken.pk)

    with caplog.at_level(logging.ERROR):
        result = sweep_anomalies(since=timezone.now() - timedelta(hours=2))

    assert result == {"opened": 2, "escalated": 0, "resolved": 0, "failed": 1}
    assert sorted(HealthAlert.objects.values_list("user_id", flat=True)) == sorted(
        p.pk for p in patients if p is not broken
    )
    [logged] = failures(caplog, "sweep_anomalies")
    assert str(broken.pk) in logged


def test_due_scores_skip_only_the_people_of_a_time_zone_that_does_not_exist(caplog):
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    yesterday = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    fine, lost = UserFactory(), UserFactory()
    for person in (fine, lost):
        reading = ReadingFactory(user=person, metric_type_id=27, value=8000, recorded_at=yesterday)
        recompute_daily_summaries(user_id=person.pk, days=[(27, reading.local_date)])
    Profile.objects.filter(user=lost).update(timezone="Mars/Olympus_Mons")  # stored before it was checked

    with caplog.at_level(logging.ERROR):
        due = due_health_scores(now=now)

    assert due == [(fine.pk, yesterday.date())]
    [logged] = failures(caplog, "due_health_scores")
    assert "Mars/Olympus_Mons" in logged
