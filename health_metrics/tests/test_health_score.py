"""The daily health score: parts and total for hand-made days, the beat task, the demo, and `health-score/`."""

import io
import itertools
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.core.management.base import OutputWrapper
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AccessLog, User
from accounts.tests.factories import CareTeamGrantFactory, UserFactory
from conftest import bearer
from health_metrics.catalog import get_catalog
from health_metrics.demo import seed_demo_readings, seed_demo_scores
from health_metrics.models import AlertRule, DailyHealthScore, Reading
from health_metrics.scoring import (
    PARTS,
    compute_health_score,
    due_health_scores,
    sleep_duration_score,
    wake_spread_minutes,
)
from health_metrics.services import recompute_daily_summaries
from health_metrics.tasks import compute_health_scores_task
from health_metrics.tests.factories import ReadingFactory, TargetFactory, set_timezone

pytestmark = pytest.mark.django_db

URL = "/api/v1/health-metrics/health-score/"
DAY = date(2026, 3, 10)
TYPE_IDS = {"blood_pressure": 1, "heart_rate": 2, "resting_heart_rate": 3, "steps": 27, "sleep_duration": 34}


_ADDED = itertools.count()


BUILT_IN = ("vitals", "activity", "sleep", "resting_heart_rate")


def built_in(parts: list[dict]) -> list[dict]:
    """The parts health_metrics computes itself; apps above register more (medications: adherence), which these
    tests leave to their own app's tests. A part without data takes no weight, so the built-in figures stand."""
    return [part for part in parts if part["name"] in BUILT_IN]


def registered_parts() -> list:
    return [spec for spec in PARTS.values() if spec.compute is not None]


def add(user, code, value, *, day=DAY, at=time(9), secondary=None):
    """A reading of a UTC patient on `day` (their local day); a microsecond apart, as one source needs."""
    moment = datetime.combine(day, at, tzinfo=UTC) + timedelta(microseconds=next(_ADDED) % 1000)
    return ReadingFactory(
        user=user,
        metric_type_id=TYPE_IDS[code],
        value=value,
        secondary_value=secondary,
        recorded_at=moment,
        local_date=day,
    )


def sleep(user, hours, *, day=DAY, wake=time(7)):
    """A night that ends on `day` at `wake`."""
    end = datetime.combine(day, wake, tzinfo=UTC)
    return ReadingFactory(
        user=user,
        metric_type_id=TYPE_IDS["sleep_duration"],
        value=hours,
        original_unit="h",
        recorded_at=end - timedelta(hours=hours),
        ended_at=end,
        local_date=day,
    )


def by_name(score):
    return {part["name"]: part for part in score.parts}


def full_day(user):
    """Every part has data: heart rate 3 of 4 in range, 6,000 steps, regular 8 h nights, resting 62 vs 60."""
    for value in (70, 75, 80, 130):
        add(user, "heart_rate", value)
    add(user, "resting_heart_rate", 62)
    for back in range(1, 11):
        add(user, "resting_heart_rate", 60, day=DAY - timedelta(days=back))
    add(user, "steps", 6000)
    for back in range(7):
        sleep(user, 8, day=DAY - timedelta(days=back))


# --- parts and total ------------------------------------------------------------------------------


def test_a_day_with_every_part_has_each_weight_score_and_contribution(user):
    full_day(user)
    score = compute_health_score(user=user, local_date=DAY)
    assert score.score == 84  # 80 × .35 + 75 × .25 + 100 × .25 + 80 × .15 = 83.75
    assert [(p["name"], p["weight"], p["score"], p["contribution"]) for p in built_in(score.parts)] == [
        ("vitals", 35.0, 80, 28.0),
        ("activity", 25.0, 75, 18.8),
        ("sleep", 25.0, 100, 25.0),
        ("resting_heart_rate", 15.0, 80, 12.0),
    ]
    parts = by_name(score)
    assert parts["vitals"]["detail"] == "4 of 5 readings within range (outside: heart rate ×1)."
    assert parts["activity"]["detail"] == "6,000 steps of 8,000 (default goal)."
    assert parts["sleep"]["detail"] == "8.0 h asleep; wake time varies ±0 min over 7 nights."
    assert parts["resting_heart_rate"]["detail"] == "62 bpm vs 30-day median 60 bpm (+2)."
    assert parts["vitals"]["label"] == "Vitals in range"
    assert DailyHealthScore.objects.get(user=user, local_date=DAY).score == 84


def test_parts_without_data_give_their_weight_to_the_others(user):
    add(user, "steps", 12000)  # capped at 100
    sleep(user, 5.5)  # halfway between 4 h (0) and 7 h (100); one night: no regularity
    score = compute_health_score(user=user, local_date=DAY)
    assert score.score == 75  # 100 × .5 + 50 × .5
    parts = built_in(score.parts)
    assert [(p["name"], p["base_weight"], p["weight"], p["score"], p["contribution"]) for p in parts] == [
        ("vitals", 35, 0.0, None, None),
        ("activity", 25, 50.0, 100, 50.0),
        ("sleep", 25, 50.0, 50, 25.0),
        ("resting_heart_rate", 15, 0.0, None, None),
    ]
    assert by_name(score)["sleep"]["detail"] == "5.5 h asleep; wake-time regularity needs 3 nights."
    assert by_name(score)["vitals"]["detail"] == "No readings with a normal range that day."


def test_scores_round_halves_up(user):
    add(user, "steps", 6600)  # 82.5 % of the default goal
    score = compute_health_score(user=user, local_date=DAY)
    assert (by_name(score)["activity"]["score"], score.score) == (83, 83)


def test_a_resting_heart_rate_without_a_seven_day_baseline_is_not_scored(user):
    add(user, "resting_heart_rate", 70)
    for back in range(1, 4):
        add(user, "resting_heart_rate", 60, day=DAY - timedelta(days=back))
    parts = by_name(compute_health_score(user=user, local_date=DAY))
    assert parts["resting_heart_rate"]["score"] is None
    assert parts["resting_heart_rate"]["detail"] == "70 bpm; a baseline needs 7 days in the last 30 (3 so far)."
    assert parts["vitals"]["score"] == 100  # the reading itself is within its normal range


def test_resting_heart_rate_loses_ten_points_per_beat_above_the_median(user):
    add(user, "resting_heart_rate", 66)
    for back, value in enumerate([58, 60, 61, 60, 59, 62, 60, 70, 90], start=1):  # median 60
        add(user, "resting_heart_rate", value, day=DAY - timedelta(days=back))
    add(user, "resting_heart_rate", 40, day=DAY - timedelta(days=31))  # outside the 30 days
    assert by_name(compute_health_score(user=user, local_date=DAY))["resting_heart_rate"]["score"] == 40


def test_the_patients_own_threshold_override_decides_what_is_in_range(user, other_user):
    add(user, "heart_rate", 70)
    add(user, "heart_rate", 130)  # above the default 120
    assert by_name(compute_health_score(user=user, local_date=DAY))["vitals"]["score"] == 50
    AlertRule.objects.create(user=other_user, metric_type_id=2, warn_high=100)  # someone else's: no effect
    AlertRule.objects.create(user=user, metric_type_id=2, warn_low=45, warn_high=140)
    score = compute_health_score(user=user, local_date=DAY)
    assert by_name(score)["vitals"]["score"] == 100
    assert by_name(score)["vitals"]["detail"] == "2 of 2 readings within range."


def test_an_inactive_override_is_ignored(user):
    add(user, "heart_rate", 130)
    AlertRule.objects.create(user=user, metric_type_id=2, warn_high=140, is_active=False)
    assert by_name(compute_health_score(user=user, local_date=DAY))["vitals"]["score"] == 0


def test_blood_pressure_counts_the_diastolic_limit(user):
    add(user, "blood_pressure", 120, secondary=80)
    add(user, "blood_pressure", 130, secondary=95)  # diastolic above 90
    parts = by_name(compute_health_score(user=user, local_date=DAY))
    assert parts["vitals"]["score"] == 50
    assert parts["vitals"]["detail"] == "1 of 2 readings within range (outside: blood pressure ×1)."


def test_the_steps_target_in_force_that_day_is_the_goal(user):
    add(user, "steps", 6000)
    TargetFactory(user=user, target_value=12000, start_date=DAY - timedelta(days=5))
    activity = by_name(compute_health_score(user=user, local_date=DAY))["activity"]
    assert (activity["score"], activity["detail"]) == (50, "6,000 steps of 12,000 (target).")
    add(user, "steps", 6000, day=DAY - timedelta(days=6))  # before the target started: the default goal
    assert by_name(compute_health_score(user=user, local_date=DAY - timedelta(days=6)))["activity"]["score"] == 75


def test_irregular_wake_times_lower_the_sleep_part(user):
    sleep(user, 8, day=DAY - timedelta(days=2), wake=time(6))
    sleep(user, 8, day=DAY - timedelta(days=1), wake=time(7))
    sleep(user, 8, wake=time(8))
    sleep(user, 1, wake=time(15))  # a nap: counted in the duration, not as the night
    sleep_part = by_name(compute_health_score(user=user, local_date=DAY))["sleep"]
    # Duration 9 h → 100; spread ±49 min → (120 − 49) / 90 → 78.9; 0.7 × 100 + 0.3 × 78.9 = 93.7
    assert sleep_part["score"] == 94
    assert sleep_part["detail"] == "9.0 h asleep; wake time varies ±49 min over 3 nights."


def test_sleep_duration_and_wake_spread_fall_off_as_documented():
    scores = [sleep_duration_score(h) for h in (3, 4, 5.5, 7, 8, 9, 10.5, 12, 13)]
    assert [round(s) for s in scores] == [0, 0, 50, 100, 100, 100, 50, 0, 0]
    assert wake_spread_minutes([23 * 60 + 50, 10]) == pytest.approx(10)  # across midnight: 20 min apart


def test_a_day_without_data_has_no_score_and_loses_a_stale_one(user):
    assert compute_health_score(user=user, local_date=DAY) is None
    assert not DailyHealthScore.objects.exists()
    reading = add(user, "steps", 4000)
    assert compute_health_score(user=user, local_date=DAY).score == 50
    reading.delete()
    assert compute_health_score(user=user, local_date=DAY) is None
    assert not DailyHealthScore.objects.exists()


def test_recomputing_a_day_updates_its_one_row(user):
    add(user, "steps", 4000)
    first = compute_health_score(user=user, local_date=DAY)
    add(user, "steps", 4000, at=time(20))  # another source's total
    second = compute_health_score(user=user, local_date=DAY)
    assert (first.pk, second.score) == (second.pk, 100)
    assert DailyHealthScore.objects.filter(user=user).count() == 1


def test_the_number_of_queries_does_not_grow_with_the_readings(user):
    add(user, "steps", 4000)
    other_day = DAY - timedelta(days=20)
    full_day_readings = [add(user, "heart_rate", 60 + n, day=other_day, at=time(n)) for n in range(24)]
    add(user, "steps", 9000, day=other_day)
    sleep(user, 7, day=other_day)
    assert len(full_day_readings) == 24
    get_catalog()  # loaded once per process, not per day
    with CaptureQueriesContext(connection) as small:
        compute_health_score(user=user, local_date=DAY)
    with CaptureQueriesContext(connection) as large:
        compute_health_score(user=user, local_date=other_day)
    assert len(small) == len(large)
    assert len(large) <= 10 + len(registered_parts())  # one query per part another app registered, at most


# --- the beat task: yesterday in each patient's time zone -----------------------------------------


def with_rollups(user, *days):
    """Steps on each day, with the day's rollup (what the beat task looks at)."""
    for day in days:
        add(user, "steps", 8000, day=day)
    recompute_daily_summaries(user_id=user.pk, days=[(TYPE_IDS["steps"], day) for day in days])


def test_due_scores_are_each_patients_local_yesterday():
    # 12:00 UTC is already 01:00 on the 11th in Auckland (UTC+13) but 05:00 on the 10th in Los Angeles (UTC-7).
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    kiwi = set_timezone(UserFactory(), "Pacific/Auckland")
    angeleno = set_timezone(UserFactory(), "America/Los_Angeles")
    for person in (kiwi, angeleno):
        with_rollups(person, date(2026, 3, 9), date(2026, 3, 10))
    assert set(due_health_scores(now=now)) == {(kiwi.pk, date(2026, 3, 10)), (angeleno.pk, date(2026, 3, 9))}
    for user_id, day in due_health_scores(now=now):
        compute_health_score(user=User.objects.get(pk=user_id), local_date=day)
    assert due_health_scores(now=now) == []


def test_a_score_is_due_again_when_its_day_changed_or_was_scored_before_it_ended(user):
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    yesterday = date(2026, 3, 9)
    with_rollups(user, yesterday)
    compute_health_score(user=user, local_date=yesterday)
    assert due_health_scores(now=now) == []
    # Scored on demand while the day was still running: due, even though nothing changed since.
    DailyHealthScore.objects.filter(user=user).update(computed_at=datetime(2026, 3, 9, 18, 0, tzinfo=UTC))
    assert due_health_scores(now=now) == [(user.pk, yesterday)]
    compute_health_score(user=user, local_date=yesterday)
    # A late reading rebuilds the rollup: due again.
    with_rollups(user, yesterday)
    assert due_health_scores(now=now) == [(user.pk, yesterday)]


def test_a_score_left_on_a_day_without_data_is_due_and_removed(user):
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    yesterday = date(2026, 3, 9)
    with_rollups(user, yesterday)
    compute_health_score(user=user, local_date=yesterday)
    Reading.objects.filter(user=user).delete()
    recompute_daily_summaries(user_id=user.pk, days=[(TYPE_IDS["steps"], yesterday)])
    assert due_health_scores(now=now) == [(user.pk, yesterday)]
    compute_health_score(user=user, local_date=yesterday)
    assert not DailyHealthScore.objects.exists()


def test_the_beat_task_scores_yesterday_per_time_zone_and_a_second_run_changes_nothing():
    # UTC+14 and UTC-11 are always on different dates.
    east = set_timezone(UserFactory(), "Pacific/Kiritimati")
    west = set_timezone(UserFactory(), "Pacific/Pago_Pago")
    days = {}
    for person in (east, west):
        days[person.pk] = timezone.localdate(timezone=zoneinfo.ZoneInfo(person.profile.timezone)) - timedelta(days=1)
    for person in (east, west):
        with_rollups(person, *days.values())
    assert compute_health_scores_task() == 2
    stored = dict(DailyHealthScore.objects.values_list("user_id", "local_date"))
    assert stored == days
    before = list(DailyHealthScore.objects.order_by("user_id").values_list("pk", "score", "computed_at"))
    assert compute_health_scores_task() == 0
    assert list(DailyHealthScore.objects.order_by("user_id").values_list("pk", "score", "computed_at")) == before


# --- the demo -------------------------------------------------------------------------------------


def test_the_demo_leaves_each_demo_patient_with_a_score_history_and_runs_twice():
    patient = UserFactory(email="zoe@openvitals.local")
    set_timezone(patient, "Europe/Madrid")
    output = io.StringIO()
    seed_demo_readings(stdout=OutputWrapper(output), days=10)
    seed_demo_scores(stdout=OutputWrapper(output), days=10)
    scores = DailyHealthScore.objects.filter(user=patient).order_by("local_date")
    history = {row.local_date: (row.score, row.parts) for row in scores}
    today = timezone.localdate(timezone=zoneinfo.ZoneInfo("Europe/Madrid"))
    assert {today - timedelta(days=back) for back in range(1, 11)} <= set(history)  # and today, once it has data
    assert all(0 <= score <= 100 for score, _ in history.values())
    yesterday_parts = history[today - timedelta(days=1)][1]
    assert [p["score"] is not None for p in built_in(yesterday_parts)] == [True, True, True, True]
    assert "scores   zoe@openvitals.local" in output.getvalue()
    seed_demo_scores(stdout=OutputWrapper(output), days=10)
    assert {row.local_date: (row.score, row.parts) for row in scores.all()} == history


# --- the endpoint ---------------------------------------------------------------------------------


@pytest.fixture
def consent(user, clinician):
    return CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])


def today_steps(user, value):
    now = timezone.now()
    return ReadingFactory(
        user=user, metric_type_id=27, value=value, recorded_at=now, local_date=timezone.localdate(timezone=UTC)
    )


def history(user, *days_back):
    """Scores for past days, stored as the beat task would."""
    today = timezone.localdate(timezone=UTC)
    for back in days_back:
        add(user, "steps", 2000 * back, day=today - timedelta(days=back))
        compute_health_score(user=user, local_date=today - timedelta(days=back))


def test_the_patient_gets_their_history_newest_first_with_today_computed(as_user, user, other_user):
    history(user, 1, 2)
    history(other_user, 1)
    today_steps(user, 8000)
    response = as_user.get(URL)
    assert response.status_code == 200
    body = response.json()
    today = timezone.localdate(timezone=UTC)
    assert body["count"] == 3
    assert [(r["local_date"], r["score"]) for r in body["results"]] == [
        (today.isoformat(), 100),
        ((today - timedelta(days=1)).isoformat(), 25),
        ((today - timedelta(days=2)).isoformat(), 50),
    ]
    first = body["results"][0]
    assert first["patient"] == str(user.pk)
    assert [p["name"] for p in built_in(first["parts"])] == ["vitals", "activity", "sleep", "resting_heart_rate"]


def test_todays_score_is_fresh_on_every_request(as_user, user):
    today_steps(user, 2000)
    assert as_user.get(URL).json()["results"][0]["score"] == 25
    today_steps(user, 4000)
    assert as_user.get(URL).json()["results"][0]["score"] == 75


def test_the_dates_narrow_the_history_and_bad_ones_are_400(as_user, user):
    history(user, 1, 2, 3)
    today = timezone.localdate(timezone=UTC)
    body = as_user.get(URL, {"start_date": str(today - timedelta(days=2)), "end_date": str(today - timedelta(days=1))})
    assert [r["local_date"] for r in body.json()["results"]] == [
        str(today - timedelta(days=1)),
        str(today - timedelta(days=2)),
    ]
    bad = as_user.get(URL, {"start_date": "yesterday"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["attr"] == "start_date"
    backwards = as_user.get(URL, {"start_date": str(today), "end_date": str(today - timedelta(days=1))})
    assert backwards.status_code == 400
    assert backwards.json()["errors"][0]["attr"] == "end_date"


def test_a_consented_clinician_reads_the_patients_history_and_it_is_logged(api_client, clinician, user, consent):
    history(user, 1)
    today_steps(user, 8000)
    response = bearer(api_client, clinician).get(URL, {"patient": str(user.pk)})
    assert response.status_code == 200
    assert [r["score"] for r in response.json()["results"]] == [100, 25]
    assert {r["patient"] for r in response.json()["results"]} == {str(user.pk)}
    assert list(AccessLog.objects.filter(actor=clinician).values_list("patient_id", "resource", "action")) == [
        (user.pk, "dailyhealthscore", "list")
    ]


@pytest.mark.parametrize("scopes", [None, ["appointments"]])
def test_a_clinician_without_metrics_consent_gets_404(api_client, clinician, user, scopes):
    if scopes is not None:
        CareTeamGrantFactory(patient=user, clinician=clinician, scopes=scopes)
    history(user, 1)
    response = bearer(api_client, clinician).get(URL, {"patient": str(user.pk)})
    assert response.status_code == 404
    assert bearer(api_client, clinician).get(URL).json()["results"] == []


def test_another_patient_is_404_and_their_scores_are_not_listed(as_user, user, other_user):
    history(other_user, 1)
    today_steps(other_user, 8000)
    assert as_user.get(URL, {"patient": str(other_user.pk)}).status_code == 404
    assert as_user.get(URL).json()["count"] == 0
    assert not DailyHealthScore.objects.filter(user=other_user, local_date=timezone.localdate(timezone=UTC)).exists()
