"""Trends (current vs previous window, change %, slope, direction) and per-type stats."""

from datetime import timedelta

import pytest
from django.utils import timezone

from health_metrics.services import app_data_source
from health_metrics.tests.factories import ReadingFactory

pytestmark = pytest.mark.django_db

TRENDS = "/api/v1/health-metrics/trends/"
STATS = "/api/v1/health-metrics/stats/"


def reading(user, value, ago, metric_type_id=2, **fields):
    """A reading `ago` (a timedelta) before now; its local day is its UTC day (the user is in UTC)."""
    return ReadingFactory(
        user=user, metric_type_id=metric_type_id, value=value, recorded_at=timezone.now() - ago, **fields
    )


def trends(client, **query):
    response = client.get(TRENDS, {"metric_type": "heart_rate", **query})
    assert response.status_code == 200, response.json()
    return response.json()


# --- trends -----------------------------------------------------------------------------------


def test_trends_compare_the_current_window_with_the_previous_one(as_user, user):
    for i in range(7):  # one reading a day, rising by 1 a day: 70 … 76
        reading(user, 70 + i, timedelta(days=6 - i, hours=1))
    reading(user, 60, timedelta(days=8))
    reading(user, 62, timedelta(days=10))
    reading(user, 200, timedelta(days=15))  # before both windows
    body = trends(as_user, days=7)
    assert body["metric_type"] == "heart_rate"
    assert body["unit"] == "/min"
    assert body["days"] == 7
    assert (body["current_count"], body["previous_count"]) == (7, 2)
    assert body["current_mean"] == 73
    assert body["previous_mean"] == 61
    assert body["change_percent"] == 19.7  # (73 - 61) / 61 * 100 = 19.67…, one decimal
    assert body["slope_per_day"] == pytest.approx(1.0, rel=1e-12)
    assert body["direction"] == "rising"
    assert body["dead_band_percent"] == 2.0


def test_the_slope_is_fitted_to_daily_means(as_user, user):
    # Daily means 80, 70, 78: slope -1.0. A fit to the five raw points would say -2.125.
    for value in (80, 80, 80):
        reading(user, value, timedelta(days=2, hours=1))
    reading(user, 70, timedelta(days=1, hours=1))
    reading(user, 78, timedelta(hours=1))
    body = trends(as_user, days=7)
    assert body["slope_per_day"] == pytest.approx(-1.0, rel=1e-12)


def test_the_slope_of_daily_means_falling_two_a_day(as_user, user):
    for days_ago, value in [(3, 90), (2, 88), (1, 86), (0, 84)]:
        reading(user, value, timedelta(days=days_ago, hours=1))
    assert trends(as_user, days=7)["slope_per_day"] == pytest.approx(-2.0, rel=1e-12)


@pytest.mark.parametrize(
    ("current", "previous", "direction"),
    [
        (102.5, 100, "rising"),
        (101.9, 100, "stable"),
        (100, 100, "stable"),
        (98.1, 100, "stable"),
        (97, 100, "falling"),
    ],
)
def test_the_direction_has_a_two_percent_dead_band(as_user, user, current, previous, direction):
    reading(user, current, timedelta(days=1))
    reading(user, previous, timedelta(days=10))
    body = trends(as_user, days=7)
    assert body["change_percent"] == pytest.approx((current - previous) / previous * 100, rel=1e-12)
    assert body["direction"] == direction


def test_one_day_of_data_has_no_slope(as_user, user):
    reading(user, 70, timedelta(hours=2))
    reading(user, 80, timedelta(hours=1))
    body = trends(as_user, days=7)
    assert body["current_mean"] == 75
    assert body["slope_per_day"] is None


def test_trends_without_previous_data_have_no_change(as_user, user):
    reading(user, 70, timedelta(days=1))
    body = trends(as_user, days=7)
    assert (body["previous_count"], body["previous_mean"]) == (0, None)
    assert body["change_percent"] is None
    assert body["direction"] is None


def test_trends_without_data(as_user):
    body = trends(as_user, days=30)
    assert (body["current_count"], body["current_mean"], body["slope_per_day"], body["direction"]) == (
        0,
        None,
        None,
        None,
    )


def test_a_previous_mean_of_zero_has_no_change_percent(as_user, user):
    reading(user, 500, timedelta(days=1), metric_type_id=27, original_unit="{steps}")
    reading(user, 0, timedelta(days=10), metric_type_id=27, original_unit="{steps}")
    body = trends(as_user, metric_type="steps", days=7)
    assert (body["current_mean"], body["previous_mean"]) == (500, 0)
    assert body["change_percent"] is None


def test_trends_count_only_the_requested_type_and_patient(as_user, user, other_user):
    reading(user, 70, timedelta(days=1))
    reading(user, 120, timedelta(days=1), metric_type_id=16, original_unit="kg")
    reading(other_user, 150, timedelta(days=1))
    body = trends(as_user, days=7)
    assert (body["current_count"], body["current_mean"]) == (1, 70)


@pytest.mark.parametrize(
    ("query", "attr"),
    [
        ({"metric_type": "heart_rate", "days": 0}, "days"),
        ({"metric_type": "heart_rate", "days": 366}, "days"),
        ({"metric_type": "heart_rate", "days": "week"}, "days"),
        ({"days": 7}, "metric_type"),
        ({"metric_type": "nope"}, "metric_type"),
    ],
)
def test_a_bad_trends_query_is_400(as_user, query, attr):
    response = as_user.get(TRENDS, query)
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == attr


# --- stats ------------------------------------------------------------------------------------


def post(client, body):
    response = client.post("/api/v1/health-metrics/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def ago(**delta):
    return (timezone.now() - timedelta(**delta)).isoformat()


def test_stats_per_type_over_the_window(as_user, user, other_user):
    post(as_user, {"metric_type": "heart_rate", "value": 60, "recorded_at": ago(days=20)})
    post(as_user, {"metric_type": "heart_rate", "value": 80, "recorded_at": ago(days=10)})
    latest = post(as_user, {"metric_type": "heart_rate", "value": 130, "recorded_at": ago(days=1)})  # abnormal
    post(as_user, {"metric_type": "heart_rate", "value": 40, "recorded_at": ago(days=40)})  # outside
    post(as_user, {"metric_type": "bp", "systolic": 120, "diastolic": 80, "recorded_at": ago(days=2)})
    reading(other_user, 150, timedelta(days=1))

    response = as_user.get(STATS, {"days": 30})
    assert response.status_code == 200
    blood_pressure, heart_rate = response.json()
    assert heart_rate == {
        "metric_type": "heart_rate",
        "unit": "/min",
        "unit_label": "bpm",
        "display_unit": "/min",
        "display_unit_label": "bpm",
        "count": 3,
        "latest": {"value": 130, "secondary_value": None, "display_value": "130", "recorded_at": latest["recorded_at"]},
        "mean": 90,
        "min": 60,
        "max": 130,
        "share_in_normal_range": 0.667,
        "direction": "rising",  # recent half mean 105 against the earlier half's 60
        "display": {"mean": 90, "min": 60, "max": 130},
    }
    assert blood_pressure["metric_type"] == "blood_pressure"
    assert blood_pressure["count"] == 1
    assert blood_pressure["latest"]["display_value"] == "120/80"
    assert blood_pressure["share_in_normal_range"] == 1.0
    assert blood_pressure["direction"] is None


def test_stats_direction_falling(as_user, user):
    reading(user, 100, timedelta(days=20))
    reading(user, 80, timedelta(days=5))
    (heart_rate,) = as_user.get(STATS, {"days": 30}).json()
    assert heart_rate["direction"] == "falling"


def test_stats_default_to_30_days(as_user, user):
    reading(user, 70, timedelta(days=29))
    reading(user, 90, timedelta(days=31))
    (heart_rate,) = as_user.get(STATS).json()
    assert (heart_rate["count"], heart_rate["mean"]) == (1, 70)


def test_stats_without_data_are_empty(as_user):
    response = as_user.get(STATS)
    assert response.status_code == 200
    assert response.json() == []


def test_a_bad_stats_window_is_400(as_user):
    response = as_user.get(STATS, {"days": 0})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "days"


def test_stats_latest_of_two_readings_at_the_same_instant_is_the_newer_row(as_user, user):
    at = timezone.now() - timedelta(hours=1)
    ReadingFactory(user=user, value=60, recorded_at=at)
    # Stored later, from another source (one source has one reading a moment).
    ReadingFactory(user=user, value=90, recorded_at=at, data_source=app_data_source(user=user, kind="import"))
    (heart_rate,) = as_user.get(STATS).json()
    assert heart_rate["latest"]["value"] == 90
