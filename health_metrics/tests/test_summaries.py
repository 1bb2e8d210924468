"""Local-day bucketing (DST, far-east zones), exact week and month medians, and daily rollups."""

import statistics
from datetime import date, timedelta

import pytest
from django.utils import timezone

from health_metrics.models import DailySummary, Reading
from health_metrics.services import recompute_daily_summaries, reconcile_daily_summaries
from health_metrics.tasks import recompute_daily_summaries_task, reconcile_daily_summaries_task
from health_metrics.tests.factories import ReadingFactory, set_timezone

pytestmark = pytest.mark.django_db

READINGS = "/api/v1/health-metrics/"


def record(client, *readings):
    """Store readings through the bulk path; answer the stored rows in the order sent."""
    response = client.post(f"{READINGS}bulk-create/", {"readings": list(readings)}, format="json")
    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert all(r["status"] == "created" for r in results), results
    return [Reading.objects.get(pk=r["id"]) for r in results]


def heart_rate(value, at, **fields):
    return {"metric_type": "heart_rate", "value": value, "recorded_at": at, **fields}


def summary(client, period, start, end, metric_type="heart_rate"):
    response = client.get(
        f"{READINGS}summary/",
        {"metric_type": metric_type, "period": period, "start_date": start, "end_date": end},
    )
    assert response.status_code == 200, response.json()
    return response.json()


def buckets(body, *fields):
    return [(b["start"], *(b[f] for f in fields)) for b in body["buckets"]]


def rollups(user, type_id=2):
    return list(
        DailySummary.objects.filter(user=user, metric_type_id=type_id)
        .order_by("local_date")
        .values_list("local_date", "count", "sum")
    )


# --- the local day across daylight-saving changes ------------------------------------------------


def test_local_days_around_the_spring_forward_in_new_york(as_user, user, django_capture_on_commit_callbacks):
    set_timezone(user, "America/New_York")
    with django_capture_on_commit_callbacks(execute=True):
        rows = record(
            as_user,
            heart_rate(61, "2026-03-07T23:30:00"),
            heart_rate(62, "2026-03-08T04:59:00Z"),  # 23:59 EST on the 7th
            heart_rate(63, "2026-03-08T00:30:00"),
            heart_rate(64, "2026-03-08T01:30:00"),  # the last half hour of EST
            heart_rate(65, "2026-03-08T03:30:00"),  # the first hour of EDT
            heart_rate(66, "2026-03-08T23:30:00"),
        )
    assert [(r.local_date.isoformat(), r.utc_offset_minutes) for r in rows] == [
        ("2026-03-07", -300),
        ("2026-03-07", -300),
        ("2026-03-08", -300),
        ("2026-03-08", -300),
        ("2026-03-08", -240),
        ("2026-03-08", -240),
    ]
    assert [r.recorded_at.isoformat() for r in rows] == [
        "2026-03-08T04:30:00+00:00",
        "2026-03-08T04:59:00+00:00",
        "2026-03-08T05:30:00+00:00",
        "2026-03-08T06:30:00+00:00",
        "2026-03-08T07:30:00+00:00",
        "2026-03-09T03:30:00+00:00",
    ]
    body = summary(as_user, "day", "2026-03-07", "2026-03-08")
    assert body["timezone"] == "America/New_York"
    assert buckets(body, "count", "sum") == [("2026-03-08", 4, 258), ("2026-03-07", 2, 123)]


def test_a_local_time_in_the_skipped_hour_is_still_that_local_day(as_user, user):
    set_timezone(user, "America/New_York")
    (row,) = record(as_user, heart_rate(70, "2026-03-08T02:30:00"))
    assert row.local_date == date(2026, 3, 8)
    assert row.recorded_at.isoformat() == "2026-03-08T07:30:00+00:00"


def test_local_days_around_the_fall_back_in_new_york(as_user, user, django_capture_on_commit_callbacks):
    set_timezone(user, "America/New_York")
    with django_capture_on_commit_callbacks(execute=True):
        rows = record(
            as_user,
            heart_rate(71, "2026-10-31T23:30:00"),
            heart_rate(72, "2026-11-01T00:30:00"),
            heart_rate(73, "2026-11-01T01:30:00"),  # ambiguous: the first (EDT) 01:30
            heart_rate(74, "2026-11-01T01:30:00-05:00"),  # the second 01:30, in EST
            heart_rate(75, "2026-11-02T04:30:00Z"),  # 23:30 EST on the 1st
        )
    assert [(r.local_date.isoformat(), r.utc_offset_minutes) for r in rows] == [
        ("2026-10-31", -240),
        ("2026-11-01", -240),
        ("2026-11-01", -240),
        ("2026-11-01", -300),
        ("2026-11-01", -300),
    ]
    assert rows[2].recorded_at.isoformat() == "2026-11-01T05:30:00+00:00"
    assert rows[3].recorded_at.isoformat() == "2026-11-01T06:30:00+00:00"
    body = summary(as_user, "day", "2026-10-31", "2026-11-01")
    assert buckets(body, "count", "sum") == [("2026-11-01", 4, 294), ("2026-10-31", 1, 71)]


def test_a_z_time_in_auckland_belongs_to_the_next_local_day(as_user, user, django_capture_on_commit_callbacks):
    set_timezone(user, "Pacific/Auckland")
    with django_capture_on_commit_callbacks(execute=True):
        rows = record(
            as_user,
            heart_rate(80, "2026-01-10T12:00:00Z"),
            # The same instant written two more ways (from two more sources: one source, one reading a moment).
            heart_rate(81, "2026-01-11T01:00:00", source="import"),
            heart_rate(82, "2026-01-11T01:00:00+13:00", source="integration"),
            heart_rate(83, "2026-01-10T10:59:00Z"),  # 23:59 on the 10th in Auckland
        )
    assert [(r.local_date.isoformat(), r.utc_offset_minutes) for r in rows] == [
        ("2026-01-11", 780),
        ("2026-01-11", 780),
        ("2026-01-11", 780),
        ("2026-01-10", 780),
    ]
    assert {r.recorded_at.isoformat() for r in rows[:3]} == {"2026-01-10T12:00:00+00:00"}
    body = summary(as_user, "day", "2026-01-10", "2026-01-11")
    assert body["timezone"] == "Pacific/Auckland"
    assert buckets(body, "count", "sum") == [("2026-01-11", 3, 243), ("2026-01-10", 1, 83)]


def test_an_interval_belongs_to_the_local_day_it_ends(as_user, user, django_capture_on_commit_callbacks):
    set_timezone(user, "America/New_York")
    with django_capture_on_commit_callbacks(execute=True):
        (row,) = record(
            as_user,
            {
                "metric_type": "sleep_duration",
                "value": 8,
                "recorded_at": "2026-11-19T23:00:00",
                "ended_at": "2026-11-20T07:00:00",
            },
        )
    assert row.local_date == date(2026, 11, 20)
    body = summary(as_user, "day", "2026-11-19", "2026-11-20", metric_type="sleep_duration")
    assert buckets(body, "sum") == [("2026-11-20", 8)]


# --- weeks and months: exact medians of the raw values -----------------------------------------------


WEEK_OF_NOV_2 = {  # Monday 2 November 2026 to Sunday 8 November
    "2026-11-02": [60, 61, 62],
    "2026-11-03": [100],
    "2026-11-04": [101],
}
WEEK_OF_NOV_9 = {"2026-11-09": [70], "2026-11-15": [80]}


def record_days(client, days):
    readings = []
    for day, values in days.items():
        readings += [heart_rate(v, f"{day}T{8 + i:02d}:00:00Z") for i, v in enumerate(values)]
    return record(client, *readings)


def test_the_weekly_median_is_the_median_of_the_raw_values(as_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        record_days(as_user, WEEK_OF_NOV_2 | WEEK_OF_NOV_9)
    raw = [v for values in WEEK_OF_NOV_2.values() for v in values]
    daily_medians = [statistics.median(values) for values in WEEK_OF_NOV_2.values()]
    assert statistics.median(raw) == 62
    assert statistics.median(daily_medians) == 100  # what a median of medians would wrongly say

    body = summary(as_user, "week", "2026-11-02", "2026-11-15")
    assert body["period"] == "week"
    first, second = body["buckets"][1], body["buckets"][0]
    assert (first["start"], first["end"]) == ("2026-11-02", "2026-11-08")
    assert first["median"] == statistics.median(raw)
    assert (first["count"], first["min"], first["max"], first["sum"]) == (5, 60, 101, 384)
    assert statistics.fmean(raw) == pytest.approx(76.8)
    assert first["mean"] == 77  # heart rate is shown with no decimals, rounded half up
    assert (second["start"], second["end"], second["count"], second["median"]) == (
        "2026-11-09",
        "2026-11-15",
        2,
        75,
    )
    assert [b["median"] for b in summary(as_user, "day", "2026-11-02", "2026-11-04")["buckets"]] == [101, 100, 61]


def test_weeks_follow_the_local_calendar(as_user, user, django_capture_on_commit_callbacks):
    set_timezone(user, "America/New_York")
    with django_capture_on_commit_callbacks(execute=True):
        record(
            as_user,
            heart_rate(60, "2026-11-09T03:00:00Z"),  # Sunday 8 November, 22:00 EST
            heart_rate(90, "2026-11-09T05:30:00Z"),  # Monday 9 November, 00:30 EST
        )
    body = summary(as_user, "week", "2026-11-02", "2026-11-15")
    assert buckets(body, "count", "median") == [("2026-11-09", 1, 90), ("2026-11-02", 1, 60)]


def test_the_monthly_median_is_the_median_of_the_raw_values(as_user, django_capture_on_commit_callbacks):
    october = {"2026-10-05": [60, 61, 62], "2026-10-20": [100], "2026-10-28": [101]}
    november = {"2026-11-03": [70, 80], "2026-11-17": [90, 95]}
    with django_capture_on_commit_callbacks(execute=True):
        record_days(as_user, october | november | {"2026-02-14": [66]})
    raw_october = [v for values in october.values() for v in values]
    raw_november = [v for values in november.values() for v in values]
    body = summary(as_user, "month", "2026-01-01", "2026-11-30")
    assert [(b["start"], b["end"], b["count"], b["median"]) for b in body["buckets"]] == [
        ("2026-11-01", "2026-11-30", 4, statistics.median(raw_november)),
        ("2026-10-01", "2026-10-31", 5, statistics.median(raw_october)),
        ("2026-02-01", "2026-02-28", 1, 66),
    ]
    assert statistics.median(raw_october) == 62
    assert statistics.median(raw_november) == 85


def test_months_follow_the_local_calendar(as_user, user, django_capture_on_commit_callbacks):
    set_timezone(user, "America/New_York")
    with django_capture_on_commit_callbacks(execute=True):
        record(as_user, heart_rate(60, "2026-11-01T02:30:00Z"))  # 31 October, 22:30 EDT
    body = summary(as_user, "month", "2026-10-01", "2026-11-30")
    assert buckets(body, "count") == [("2026-10-01", 1)]


def test_summaries_are_the_patients_own(as_user, user, other_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        record(as_user, heart_rate(60, "2026-11-03T08:00:00Z"))
    ReadingFactory(
        user=other_user, value=150, recorded_at=timezone.now() - timedelta(days=20), local_date=date(2026, 11, 3)
    )
    recompute_daily_summaries(user_id=other_user.pk, days=[(2, date(2026, 11, 3))])
    body = summary(as_user, "week", "2026-11-02", "2026-11-08")
    assert buckets(body, "count", "max") == [("2026-11-02", 1, 60)]


def test_blood_pressure_summaries_carry_the_diastolic_too(as_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        record(
            as_user,
            *[
                {"metric_type": "bp", "systolic": s, "diastolic": d, "recorded_at": f"2026-11-03T0{i}:00:00Z"}
                for i, (s, d) in enumerate([(120, 80), (130, 85), (140, 95)])
            ],
        )
    for period in ("day", "week"):
        (bucket,) = summary(as_user, period, "2026-11-03", "2026-11-03", metric_type="blood_pressure")["buckets"]
        assert (bucket["median"], bucket["secondary_median"], bucket["secondary_min"], bucket["secondary_max"]) == (
            130,
            85,
            80,
            95,
        )


@pytest.mark.parametrize(
    ("query", "attr"),
    [
        ({"period": "day"}, "metric_type"),
        ({"metric_type": "heart_rate", "period": "year"}, "period"),
        ({"metric_type": "no_such_type"}, "metric_type"),
        ({"metric_type": "heart_rate", "start_date": "2026-11-10", "end_date": "2026-11-01"}, "start_date"),
        ({"metric_type": "heart_rate", "start_date": "2010-01-01", "end_date": "2026-11-01"}, "start_date"),
    ],
)
def test_a_bad_summary_query_is_400(as_user, query, attr):
    response = as_user.get(f"{READINGS}summary/", query)
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == attr


# --- daily rollups ---------------------------------------------------------------------------------


def test_buckets_come_from_the_rollups(as_user, user):
    # Stored without running the after-commit rollup: the raw rows exist, the rollups do not.
    record(as_user, heart_rate(60, "2026-11-03T08:00:00Z"), heart_rate(70, "2026-11-03T09:00:00Z"))
    assert not DailySummary.objects.exists()
    assert summary(as_user, "day", "2026-11-03", "2026-11-03")["buckets"] == []
    assert summary(as_user, "week", "2026-11-02", "2026-11-08")["buckets"] == []
    recompute_daily_summaries(user_id=user.pk, days=[(2, date(2026, 11, 3))])
    assert buckets(summary(as_user, "week", "2026-11-02", "2026-11-08"), "count") == [("2026-11-02", 2)]
    assert buckets(summary(as_user, "month", "2026-11-01", "2026-11-30"), "count") == [("2026-11-01", 2)]

    DailySummary.objects.filter(user=user).update(count=9, sum=45)  # the day's figures are the rollup's
    (bucket,) = summary(as_user, "day", "2026-11-03", "2026-11-03")["buckets"]
    assert (bucket["start"], bucket["end"], bucket["count"], bucket["sum"]) == ("2026-11-03", "2026-11-03", 9, 45)


def test_a_write_builds_the_days_rollup(as_user, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        record(as_user, heart_rate(60, "2026-11-03T08:00:00Z"), heart_rate(71, "2026-11-03T09:00:00Z"))
    row = DailySummary.objects.get(user=user)
    assert (row.local_date, row.count, row.min, row.max, row.mean, row.median, row.sum) == (
        date(2026, 11, 3),
        2,
        60,
        71,
        65.5,
        65.5,
        131,
    )
    assert row.secondary_mean is None


def test_editing_a_value_recomputes_the_rollup(as_user, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first, _ = record(as_user, heart_rate(60, "2026-11-03T08:00:00Z"), heart_rate(70, "2026-11-03T09:00:00Z"))
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user.patch(f"{READINGS}{first.pk}/", {"value": 90}, format="json")
    assert response.status_code == 200, response.json()
    row = DailySummary.objects.get(user=user)
    assert (row.count, row.min, row.max, row.mean, row.sum) == (2, 70, 90, 80, 160)


def test_moving_a_reading_to_another_day_recomputes_both_days(as_user, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        (reading,) = record(as_user, heart_rate(60, "2026-11-03T08:00:00Z"))
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user.patch(f"{READINGS}{reading.pk}/", {"recorded_at": "2026-11-05T08:00:00Z"}, format="json")
    assert response.status_code == 200
    assert response.json()["local_date"] == "2026-11-05"
    assert rollups(user) == [(date(2026, 11, 5), 1, 60)]


def test_deleting_a_reading_recomputes_the_rollup(as_user, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first, _ = record(as_user, heart_rate(60, "2026-11-03T08:00:00Z"), heart_rate(70, "2026-11-03T09:00:00Z"))
    with django_capture_on_commit_callbacks(execute=True):
        assert as_user.delete(f"{READINGS}{first.pk}/").status_code == 204
    assert rollups(user) == [(date(2026, 11, 3), 1, 70)]


def test_deleting_a_days_last_reading_removes_its_rollup(as_user, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        (reading,) = record(as_user, heart_rate(60, "2026-11-03T08:00:00Z"))
    assert rollups(user) == [(date(2026, 11, 3), 1, 60)]
    with django_capture_on_commit_callbacks(execute=True):
        assert as_user.delete(f"{READINGS}{reading.pk}/").status_code == 204
    assert rollups(user) == []
    assert summary(as_user, "day", "2026-11-03", "2026-11-03")["buckets"] == []


def rollup_rows(user):
    return list(
        DailySummary.objects.filter(user=user)
        .order_by("metric_type_id", "local_date")
        .values_list("id", "metric_type_id", "local_date", "count", "min", "max", "mean", "median", "sum")
    )


def test_the_rollup_task_run_twice_gives_the_same_rows(user):
    day = date(2026, 11, 3)
    for value in (60, 65, 80):
        ReadingFactory(user=user, value=value, local_date=day)
    ReadingFactory(user=user, metric_type_id=27, value=5000, original_unit="{steps}", local_date=day)
    pairs = [[2, "2026-11-03"], [27, "2026-11-03"]]
    assert recompute_daily_summaries_task(str(user.pk), pairs) == 2
    once = rollup_rows(user)
    assert recompute_daily_summaries_task(str(user.pk), pairs) == 2
    assert rollup_rows(user) == once
    assert [row[1:] for row in once] == [
        (2, day, 3, 60, 80, 205 / 3, 65, 205),
        (27, day, 1, 5000, 5000, 5000, 5000, 5000),
    ]


def test_reconcile_rebuilds_a_deleted_rollup(as_user, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        record(as_user, heart_rate(60, "2026-11-03T08:00:00Z"), heart_rate(70, "2026-11-04T08:00:00Z"))
    before = [row[1:] for row in rollup_rows(user)]
    DailySummary.objects.filter(user=user, local_date=date(2026, 11, 3)).delete()
    assert reconcile_daily_summaries() == 1  # only the day that lost its rollup
    assert [row[1:] for row in rollup_rows(user)] == before
    assert len(before) == 2


def test_reconcile_rebuilds_stale_rollups_of_any_day_and_leaves_fresh_ones_alone(user, other_user):
    """Days of any age: no rollup yet, a reading written after the rollup, a reading deleted without a
    recompute (same write time, fewer readings), every reading of a day deleted (its rollup goes)."""
    long_ago, gone, last_month, yesterday = date(2024, 2, 10), date(2025, 5, 5), date(2026, 10, 1), date(2026, 11, 3)
    ReadingFactory(user=user, value=60, local_date=long_ago)
    ReadingFactory(user=user, value=70, local_date=last_month)
    ReadingFactory(user=user, value=80, local_date=yesterday)
    deleted = ReadingFactory(user=user, value=81, local_date=yesterday)
    orphaned = ReadingFactory(user=user, value=90, local_date=gone)
    ReadingFactory(user=other_user, value=50, local_date=long_ago)
    assert reconcile_daily_summaries() == 5
    assert rollups(user) == [(long_ago, 1, 60), (gone, 1, 90), (last_month, 1, 70), (yesterday, 2, 161)]
    assert reconcile_daily_summaries() == 0  # nothing stale any more

    ReadingFactory(user=user, value=40, local_date=long_ago)  # arrives late, and its recompute is lost
    Reading.objects.filter(pk=deleted.pk).delete()
    Reading.objects.filter(pk=orphaned.pk).delete()
    assert reconcile_daily_summaries() == 2  # long_ago and yesterday rebuilt; gone's rollup removed
    assert rollups(user) == [(long_ago, 2, 100), (last_month, 1, 70), (yesterday, 1, 80)]
    assert rollups(other_user) == [(long_ago, 1, 50)]
    assert reconcile_daily_summaries() == 0


def test_the_nightly_task_rebuilds_stale_rollups(user):
    reading = ReadingFactory(user=user, value=64, local_date=date(2025, 1, 1))
    assert not DailySummary.objects.exists()
    assert reconcile_daily_summaries_task() == 1
    assert rollups(user) == [(reading.local_date, 1, 64)]
