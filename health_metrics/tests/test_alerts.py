"""Anomaly checks: thresholds at and around their limits, persistence, episodes, overrides and baselines."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from health_metrics.alerts import check_anomalies, save_rule_override, sync_default_rules, threshold_episodes
from health_metrics.models import AlertRule, DailySummary, HealthAlert, RuleKind
from health_metrics.services import recompute_daily_summaries
from health_metrics.tests.factories import ReadingFactory

pytestmark = pytest.mark.django_db

BP, HR, RHR, SPO2, GLUCOSE, WEIGHT = 1, 2, 3, 7, 9, 16
START = timezone.now().replace(second=0, microsecond=0) - timedelta(days=1)


def add(user, type_id, value, minutes=0, secondary=None, at=None):
    at = at or START + timedelta(minutes=minutes)
    return ReadingFactory(
        user=user,
        metric_type_id=type_id,
        value=value,
        secondary_value=secondary,
        original_secondary_value=secondary,
        recorded_at=at,
        local_date=at.date(),
    )


def check(user, *type_ids):
    days = {
        (t, d) for t in type_ids for d in user.readings.filter(metric_type_id=t).values_list("local_date", flat=True)
    }
    return check_anomalies(user_id=user.pk, days=days)


def alerts(user, **filters):
    return list(HealthAlert.objects.filter(user=user, **filters).order_by("started_at"))


# --- Thresholds: at, just under, just over ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(69.9, "warning"), (70.0, None), (70.1, None), (53.9, "critical"), (54.0, "warning")],
)
def test_glucose_low_limits_alert_at_once_below_the_limit(user, value, expected):
    add(user, GLUCOSE, value)
    check(user, GLUCOSE)
    found = alerts(user)
    assert [a.severity for a in found] == ([expected] if expected else [])
    if expected:
        assert found[0].direction == "low"
        assert found[0].status == "open"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(179.9, None), (180.0, "warning"), (180.1, "warning"), (249.9, "warning"), (250.0, "critical")],
)
def test_glucose_high_limits_count_at_the_limit(user, value, expected):
    add(user, GLUCOSE, value)
    check(user, GLUCOSE)
    assert [a.severity for a in alerts(user)] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("systolic", "diastolic", "expected"),
    [(139, 85, None), (140, 85, "warning"), (135, 89, None), (135, 90, "warning"), (141, 91, "warning")],
)
def test_blood_pressure_warnings_on_either_component(user, systolic, diastolic, expected):
    add(user, BP, systolic, secondary=diastolic)
    check(user, BP)
    assert [a.severity for a in alerts(user)] == ([expected] if expected else [])


def test_a_single_crisis_reading_is_a_warning_until_a_second_within_15_minutes_confirms_it(user):
    first = add(user, BP, 185, secondary=110)
    check(user, BP)
    (alert,) = alerts(user)
    assert alert.severity == "warning"
    assert "repeat it within 15 minutes" in alert.message
    second = add(user, BP, 182, minutes=10, secondary=105)
    check(user, BP)
    (alert,) = alerts(user)
    assert alert.severity == "critical"
    assert {r.pk for r in alert.readings.all()} == {first.pk, second.pk}
    assert "repeat" not in alert.message


def test_a_repeat_crisis_reading_after_the_window_does_not_confirm(user):
    add(user, BP, 185, secondary=110)
    add(user, BP, 184, minutes=40, secondary=110)
    check(user, BP)
    assert [a.severity for a in alerts(user)] == ["warning"]


def test_a_diastolic_crisis_is_confirmed_too(user):
    add(user, BP, 170, secondary=121)
    add(user, BP, 168, minutes=5, secondary=122)
    check(user, BP)
    assert [a.severity for a in alerts(user)] == ["critical"]


# --- Persistence ---------------------------------------------------------------------------------


def test_one_heart_rate_spike_raises_nothing(user):
    for minute, value in enumerate([80, 140, 82, 79]):
        add(user, HR, value, minutes=minute * 2)
    check(user, HR)
    assert alerts(user) == []


def test_a_heart_rate_high_for_ten_minutes_raises_one_alert(user):
    for minute in range(0, 12, 2):  # 0..10 minutes, six readings at 125
        add(user, HR, 125, minutes=minute)
    check(user, HR)
    (alert,) = alerts(user)
    assert (alert.severity, alert.direction, alert.value) == ("warning", "high", 125)
    assert alert.readings.count() == 6
    assert "6 reading(s) over 10 min" in alert.message


def test_nine_minutes_high_is_not_yet_sustained(user):
    for minute in range(0, 10, 3):  # 0, 3, 6, 9
        add(user, HR, 125, minutes=minute)
    check(user, HR)
    assert alerts(user) == []


def test_a_sustained_run_that_reaches_the_critical_limit_escalates_the_episode(user):
    for minute in range(0, 12, 2):
        add(user, HR, 125, minutes=minute)
    check(user, HR)
    for minute in range(12, 24, 2):
        add(user, HR, 135, minutes=minute)
    check(user, HR)
    (alert,) = alerts(user)
    assert (alert.severity, alert.value) == ("critical", 135)


# --- Episodes and hysteresis ------------------------------------------------------------------------


def test_one_alert_per_episode_closed_by_a_reading_back_in_range_and_reopened_after(user):
    add(user, GLUCOSE, 60)
    add(user, GLUCOSE, 62, minutes=30)
    check(user, GLUCOSE)
    assert len(alerts(user)) == 1
    add(user, GLUCOSE, 70.5, minutes=60)  # in range, but inside the 2 % margin: still the same episode
    check(user, GLUCOSE)
    (alert,) = alerts(user)
    assert alert.status == "open"
    add(user, GLUCOSE, 95, minutes=90)
    check(user, GLUCOSE)
    (alert,) = alerts(user)
    assert alert.status == "resolved"
    assert alert.resolved_at == START + timedelta(minutes=90)
    add(user, GLUCOSE, 58, minutes=120)
    check(user, GLUCOSE)
    first, second = alerts(user)
    assert (first.status, second.status) == ("resolved", "open")
    assert second.started_at == START + timedelta(minutes=120)


def test_checks_are_idempotent(user):
    for minute in range(0, 12, 2):
        add(user, HR, 125, minutes=minute)
    add(user, GLUCOSE, 50)
    check(user, HR, GLUCOSE)
    before = {(a.pk, a.updated_at) for a in alerts(user)}
    counts = check(user, HR, GLUCOSE)
    assert counts == {"opened": 0, "escalated": 0, "resolved": 0}
    assert {(a.pk, a.updated_at) for a in alerts(user)} == before


def test_an_acknowledged_alert_stays_until_values_recover(user, as_user):
    add(user, GLUCOSE, 50)
    check(user, GLUCOSE)
    (alert,) = alerts(user)
    response = as_user.post(f"/api/v1/health-metrics/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 200
    assert response.json()["status"] == "acknowledged"
    add(user, GLUCOSE, 100, minutes=30)
    check(user, GLUCOSE)
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert alert.acknowledged_by == user


def test_readings_older_than_the_lookback_raise_nothing(user):
    add(user, GLUCOSE, 40, at=timezone.now() - timedelta(days=40))
    check(user, GLUCOSE)
    assert alerts(user) == []


# --- Rules: defaults and per-patient overrides ---------------------------------------------------


def test_default_rules_come_from_the_catalog_with_the_clinics_persistence():
    bp = AlertRule.objects.get(user=None, metric_type_id=BP, kind=RuleKind.THRESHOLD)
    assert (bp.warn_high, bp.critical_high, bp.secondary_warn_high, bp.secondary_critical_high) == (140, 180, 90, 120)
    assert (bp.min_readings, bp.confirm_minutes, bp.persist_critical_only) == (2, 15, True)
    hr = AlertRule.objects.get(user=None, metric_type_id=HR, kind=RuleKind.THRESHOLD)
    assert (hr.sustain_minutes, hr.min_readings) == (10, 2)
    assert AlertRule.objects.filter(user=None, metric_type_id=RHR, kind=RuleKind.BASELINE).exists()


def test_syncing_the_defaults_again_changes_nothing_and_a_changed_default_gets_a_new_version():
    count = AlertRule.objects.count()
    sync_default_rules()
    assert AlertRule.objects.count() == count
    AlertRule.objects.filter(user=None, metric_type_id=GLUCOSE).update(warn_low=65)
    sync_default_rules()
    rule = AlertRule.objects.get(user=None, metric_type_id=GLUCOSE)
    assert (rule.warn_low, rule.version) == (70, 2)


def test_a_copd_patients_spo2_override_replaces_the_default(user, other_user):
    override = save_rule_override(
        rule=AlertRule(user=user, metric_type_id=SPO2, warn_low=88, critical_low=85, min_readings=2, created_by=user)
    )
    for person in (user, other_user):
        add(person, SPO2, 90)
        add(person, SPO2, 90, minutes=5)
        check(person, SPO2)
    assert alerts(user) == []
    (alert,) = alerts(other_user)
    assert alert.direction == "low"
    add(user, SPO2, 87, minutes=10)
    add(user, SPO2, 86, minutes=15)
    check(user, SPO2)
    (alert,) = alerts(user)
    assert (alert.rule_id, alert.rule_version) == (override.pk, 1)


def test_changing_an_override_bumps_its_version_and_new_alerts_record_it(user):
    rule = save_rule_override(rule=AlertRule(user=user, metric_type_id=GLUCOSE, warn_low=60, critical_low=50))
    rule.warn_low = 65
    save_rule_override(rule=rule)
    rule.notes = "no change to what it decides"
    save_rule_override(rule=rule)
    assert rule.version == 2
    add(user, GLUCOSE, 62)
    check(user, GLUCOSE)
    (alert,) = alerts(user)
    assert (alert.rule_id, alert.rule_version) == (rule.pk, 2)


# --- Baselines -----------------------------------------------------------------------------------------


def daily(user, type_id, values, end=None):
    """One reading a day at 08:00 UTC, the last on `end`, with rollups rebuilt as the worker would."""
    end = end or timezone.now().date()
    first = end - timedelta(days=len(values) - 1)
    for offset, value in enumerate(values):
        day = first + timedelta(days=offset)
        add(user, type_id, value, at=datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=8))
    recompute_daily_summaries(user_id=user.pk, days={(type_id, first + timedelta(days=n)) for n in range(len(values))})
    return first


def test_resting_heart_rate_far_above_the_patients_own_baseline_alerts(user):
    baseline = [60, 61, 59, 60, 62, 58, 60, 61, 59, 60, 60, 61, 59, 60]
    daily(user, RHR, [*baseline, 75])
    check(user, RHR)
    (alert,) = alerts(user)
    assert (alert.direction, alert.value, alert.severity) == ("above_baseline", 75, "warning")
    assert "standard deviations above the 30-day baseline" in alert.message
    assert alert.readings.count() == 1


def test_the_same_value_in_a_noisy_baseline_is_no_anomaly(user):
    daily(user, RHR, [52, 70, 55, 68, 50, 72, 58, 66, 54, 71, 60, 65, 53, 69, 75])
    check(user, RHR)
    assert alerts(user) == []


def test_too_short_a_baseline_raises_nothing(user):
    daily(user, RHR, [60, 60, 61, 60, 90])
    check(user, RHR)
    assert alerts(user) == []


def test_weight_gain_over_days_alerts_and_recovery_closes_it(user):
    first = daily(user, WEIGHT, [80.0, 80.1, 79.9, 80.0, 80.2, 79.8, 80.0, 80.1, 80.0, 79.9, 82.5, 83.0])
    check(user, WEIGHT)
    (alert,) = alerts(user)
    assert alert.direction == "above_baseline"
    assert alert.status == "open"
    assert alert.started_at.date() == first + timedelta(days=10)
    daily(user, WEIGHT, [80.0], end=first + timedelta(days=12))
    check(user, WEIGHT)
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_baseline_rules_only_look_one_way(user):
    daily(user, RHR, [60, 61, 59, 60, 62, 58, 60, 61, 59, 60, 45])  # far below: resting heart rate falling is fine
    check(user, RHR)
    assert alerts(user) == []


def test_baselines_read_the_rollups(user):
    daily(user, RHR, [60, 61, 59, 60, 62, 58, 60, 61, 59, 60, 75])
    DailySummary.objects.filter(user=user).delete()
    check(user, RHR)
    assert alerts(user) == []


# --- Every default threshold, at and around each of its limits -------------------------------------


def _limit_cases():
    from health_metrics.alerts import THRESHOLD_FIELDS, default_rule_specs

    cases = []
    for spec in default_rule_specs():
        if spec["kind"] != RuleKind.THRESHOLD:
            continue
        for name in THRESHOLD_FIELDS:
            limit = spec.get(name)
            if limit is not None:
                cases.append(pytest.param(spec, name, limit, id=f"{spec['metric_type_id']}-{name}-{limit:g}"))
    return cases


@pytest.mark.parametrize(("spec", "name", "limit"), _limit_cases())
def test_every_default_limit_at_just_inside_and_just_outside(spec, name, limit):
    """High limits are the first abnormal value, low limits the lowest normal one; critical beats warning."""
    from health_metrics.alerts import Point, reading_level

    rule = AlertRule(**{k: v for k, v in spec.items() if k != "metric_type_id"}, metric_type_id=spec["metric_type_id"])
    secondary = name.startswith("secondary")
    high = name.endswith("high")
    level = 2 if "critical" in name else 1
    direction = "high" if high else "low"
    step = 0.01 * max(abs(limit), 1)

    def level_at(value):
        if secondary:  # the systolic stays in range; the diastolic carries the value
            return reading_level(rule, Point(None, START, 100.0, value), direction)
        return reading_level(rule, Point(None, START, value, None), direction)

    inside, outside = (limit - step, limit + step) if high else (limit + step, limit - step)
    assert level_at(limit) == (level if high else level_at(inside))
    assert level_at(outside) == level
    assert level_at(inside) < level
    # And one reading past the limit is an alert at once unless the rule waits for more.
    episodes = threshold_episodes(
        rule, [Point(1, START, outside if not secondary else 100.0, None if not secondary else outside)]
    )
    at_once = rule.min_readings <= 1 or rule.persist_critical_only  # an unconfirmed crisis is a warning at once
    assert len(episodes) == (1 if at_once else 0)
