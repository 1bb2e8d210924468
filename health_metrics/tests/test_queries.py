"""Query counts that must not grow with the data: list pages, summary buckets, targets, batches."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests.factories import CareTeamGrantFactory
from conftest import bearer
from health_metrics.services import app_data_source, create_data_source, reconcile_daily_summaries
from health_metrics.tests.factories import ReadingFactory, TargetFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/health-metrics/"


def queries(client, path, params=None, method="get", **kwargs) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(path, params, **kwargs)
    assert response.status_code == 200, response.json()
    return len(captured)


def test_the_readings_list_costs_the_same_for_10_and_100_per_page(as_user, user):
    ReadingFactory.create_batch(120, user=user)
    ten = queries(as_user, URL, {"page_size": 10})
    hundred = queries(as_user, URL, {"page_size": 100})
    assert hundred == ten


def test_the_readings_list_costs_the_same_for_readings_of_more_sources(as_user, user):
    ReadingFactory.create_batch(10, user=user)
    one_source = queries(as_user, URL, {"page_size": 100})
    for _ in range(5):
        watch = create_data_source(user=user, kind="device", name="Watch")
        ReadingFactory.create_batch(10, user=user, data_source=watch)
    assert queries(as_user, URL, {"page_size": 100}) == one_source


def test_the_sources_list_costs_the_same_for_more_sources(as_user, user):
    app_data_source(user=user)
    few = queries(as_user, f"{URL}sources/")
    for kind in ("import", "integration", "device"):
        app_data_source(user=user, kind=kind)
    for number in range(5):
        create_data_source(user=user, kind="device", name=f"Watch {number}")
    assert as_user.get(f"{URL}sources/").json()["count"] == 9
    assert queries(as_user, f"{URL}sources/") == few


def test_a_clinicians_sources_list_costs_the_same_for_more_patients(api_client, clinician):
    client = bearer(api_client, clinician)
    app_data_source(user=CareTeamGrantFactory(clinician=clinician).patient)
    few = queries(client, f"{URL}sources/")
    for _ in range(4):
        create_data_source(user=CareTeamGrantFactory(clinician=clinician).patient, kind="device", name="Watch")
    assert queries(client, f"{URL}sources/") == few


def test_a_clinicians_readings_list_costs_the_same_for_more_patients(api_client, clinician):
    client = bearer(api_client, clinician)
    first = CareTeamGrantFactory(clinician=clinician).patient
    ReadingFactory.create_batch(2, user=first)
    few = queries(client, URL)
    for _ in range(4):
        ReadingFactory.create_batch(2, user=CareTeamGrantFactory(clinician=clinician).patient)
    assert queries(client, URL) == few


def week_of_readings(user, weeks: int):
    monday = date(2026, 8, 3)
    for week in range(weeks):
        for day in (0, 2, 4):
            ReadingFactory(user=user, value=60 + week + day, local_date=monday + timedelta(weeks=week, days=day))
    reconcile_daily_summaries()


@pytest.mark.parametrize("period", ["week", "month"])
def test_the_summary_costs_the_same_for_2_and_10_weeks_of_data(api_client, user, other_user, period):
    params = {"metric_type": "heart_rate", "period": period, "start_date": "2026-08-03", "end_date": "2026-10-11"}
    week_of_readings(user, 2)
    week_of_readings(other_user, 10)
    few = queries(bearer(api_client, user), f"{URL}summary/", params)
    two = len(bearer(api_client, user).get(f"{URL}summary/", params).json()["buckets"])
    many = queries(bearer(api_client, other_user), f"{URL}summary/", params)
    ten = len(bearer(api_client, other_user).get(f"{URL}summary/", params).json()["buckets"])
    assert (two, ten) == ((2, 10) if period == "week" else (1, 3))
    assert many == few


def test_the_day_summary_costs_the_same_for_more_days(as_user, user, django_capture_on_commit_callbacks):
    params = {"metric_type": "heart_rate", "period": "day", "start_date": "2026-11-01", "end_date": "2026-11-20"}
    with django_capture_on_commit_callbacks(execute=True):
        as_user.post(f"{URL}bulk-create/", {"readings": [_hr("2026-11-02")]}, format="json")
    few = queries(as_user, f"{URL}summary/", params)
    with django_capture_on_commit_callbacks(execute=True):
        as_user.post(f"{URL}bulk-create/", {"readings": [_hr(f"2026-11-{d:02d}") for d in range(3, 19)]}, format="json")
    assert len(as_user.get(f"{URL}summary/", params).json()["buckets"]) == 17
    assert queries(as_user, f"{URL}summary/", params) == few


def _hr(day: str) -> dict:
    return {"metric_type": "heart_rate", "value": 70, "recorded_at": f"{day}T08:00:00Z"}


def test_the_targets_list_costs_the_same_for_more_targets(as_user, user):
    for type_id in (27, 2):
        TargetFactory(user=user, metric_type_id=type_id)
    few = queries(as_user, f"{URL}targets/")
    for type_id in (16, 8, 9, 34, 41, 43, 1, 7):
        TargetFactory(user=user, metric_type_id=type_id)
    for _ in range(3):
        TargetFactory(user=user, metric_type_id=27, is_active=False)
    assert as_user.get(f"{URL}targets/").json()["count"] == 13
    assert queries(as_user, f"{URL}targets/") == few


def test_a_bulk_create_costs_the_same_for_10_and_200_readings(as_user, user):
    app_data_source(user=user)  # made by the first write of all; not what this measures

    def batch(n, offset):
        return {"readings": [_hr_at(offset + i) for i in range(n)]}

    ten = queries(as_user, f"{URL}bulk-create/", batch(10, 0), method="post", format="json")
    two_hundred = queries(as_user, f"{URL}bulk-create/", batch(200, 10), method="post", format="json")
    assert two_hundred == ten


def _hr_at(minutes: int) -> dict:
    at = timezone.now() - timedelta(days=1, minutes=minutes)
    return {"metric_type": "heart_rate", "value": 70, "recorded_at": at.isoformat(), "client_id": None}


def test_stats_cost_the_same_for_more_types(as_user, user):
    ReadingFactory(user=user)
    few = queries(as_user, f"{URL}stats/")
    for type_id in (1, 8, 9, 16, 27):
        ReadingFactory(user=user, metric_type_id=type_id, value=100, secondary_value=60 if type_id == 1 else None)
    assert len(as_user.get(f"{URL}stats/").json()) == 6
    assert queries(as_user, f"{URL}stats/") == few
