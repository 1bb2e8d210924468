"""The alert endpoints, rule overrides over the API, and the checks wired after every write path."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AccessLog
from accounts.tests.factories import CareTeamGrantFactory
from conftest import bearer
from health_metrics.alerts import check_anomalies
from health_metrics.models import AlertRule, HealthAlert
from health_metrics.tests.factories import ReadingFactory

pytestmark = pytest.mark.django_db

ALERTS = "/api/v1/health-metrics/alerts/"
RULES = "/api/v1/health-metrics/alert-rules/"
GLUCOSE = 9


def low_glucose(user, value=50, minutes_ago=30):
    at = timezone.now() - timedelta(minutes=minutes_ago)
    ReadingFactory(user=user, metric_type_id=GLUCOSE, value=value, recorded_at=at, local_date=at.date())
    check_anomalies(user_id=user.pk, days={(GLUCOSE, at.date())})
    return HealthAlert.objects.filter(user=user).latest("started_at")


@pytest.fixture
def as_clinician(clinician):
    return bearer(APIClient(), clinician)


# --- Listing and access ---------------------------------------------------------------------------


def test_a_patient_lists_their_own_alerts_only(as_user, user, other_user):
    mine = low_glucose(user)
    low_glucose(other_user)
    body = as_user.get(ALERTS).json()
    assert [a["id"] for a in body["results"]] == [str(mine.pk)]
    alert = body["results"][0]
    assert alert["severity"] == "critical"
    assert alert["metric_type"] == "blood_glucose"
    assert alert["unit"] == "mg/dL"
    assert len(alert["readings"]) == 1
    assert "below 54 mg/dL" in alert["message"]


def test_another_patients_alert_is_404(as_user, other_user):
    theirs = low_glucose(other_user)
    assert as_user.get(f"{ALERTS}{theirs.pk}/").status_code == 404
    assert as_user.post(f"{ALERTS}{theirs.pk}/acknowledge/").status_code == 404


def test_a_clinician_sees_alerts_only_with_consent_and_the_read_is_logged(as_clinician, clinician, user):
    alert = low_glucose(user)
    assert as_clinician.get(ALERTS).json()["results"] == []
    assert as_clinician.get(f"{ALERTS}{alert.pk}/").status_code == 404
    CareTeamGrantFactory(patient=user, clinician=clinician)
    assert [a["id"] for a in as_clinician.get(ALERTS).json()["results"]] == [str(alert.pk)]
    response = as_clinician.post(f"{ALERTS}{alert.pk}/acknowledge/")
    assert response.status_code == 200
    assert response.json()["acknowledged_by"] == str(clinician.pk)
    actions = set(AccessLog.objects.filter(actor=clinician, patient=user).values_list("action", flat=True))
    assert {"list", "update"} <= actions


def test_a_grant_without_the_metrics_scope_shows_nothing(as_clinician, clinician, user):
    low_glucose(user)
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["appointments"])
    assert as_clinician.get(ALERTS).json()["results"] == []


def test_alerts_filter_by_severity_status_and_type_and_list_open_critical_first(as_user, user):
    resolved = low_glucose(user, value=65, minutes_ago=90)
    low_glucose(user, value=120, minutes_ago=80)  # back in range: closes it
    critical = low_glucose(user, value=45, minutes_ago=10)
    resolved.refresh_from_db()
    assert resolved.status == "resolved"
    ids = [a["id"] for a in as_user.get(ALERTS).json()["results"]]
    assert ids == [str(critical.pk), str(resolved.pk)]
    assert [a["id"] for a in as_user.get(ALERTS, {"status": "open"}).json()["results"]] == [str(critical.pk)]
    assert [a["id"] for a in as_user.get(ALERTS, {"severity": "warning"}).json()["results"]] == [str(resolved.pk)]
    assert len(as_user.get(ALERTS, {"metric_type": "blood_glucose"}).json()["results"]) == 2
    assert as_user.get(ALERTS, {"metric_type": "heart_rate"}).json()["results"] == []


@pytest.mark.parametrize(("param", "value"), [("metric_type", "nonsense"), ("severity", "mild"), ("status", "x")])
def test_bad_filters_are_400_naming_the_field(as_user, param, value):
    response = as_user.get(ALERTS, {param: value})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == param


def test_the_alert_list_is_constant_in_queries(as_user, user, django_assert_max_num_queries):
    for minutes in (300, 200, 100):
        low_glucose(user, value=50, minutes_ago=minutes)
        low_glucose(user, value=110, minutes_ago=minutes - 50)
    with django_assert_max_num_queries(12) as few:
        as_user.get(ALERTS)
    for minutes in (40, 30, 20, 10):
        low_glucose(user, value=50, minutes_ago=minutes)
        low_glucose(user, value=110, minutes_ago=minutes - 5)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(as_user.get(ALERTS).json()["results"]) == 7


# --- Wiring: every write path runs the checks -------------------------------------------------------


def test_a_reading_posted_to_the_api_raises_an_alert(as_user, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user.post(
            "/api/v1/health-metrics/",
            {"metric_type": "blood_glucose", "value": 2.5, "unit": "mmol/L", "recorded_at": timezone.now().isoformat()},
            format="json",
        )
    assert response.status_code == 201
    (alert,) = HealthAlert.objects.filter(user=user)
    assert (alert.severity, alert.direction) == ("critical", "low")
    assert alert.value == pytest.approx(45.0, abs=0.2)


# --- Rule overrides --------------------------------------------------------------------------------------


def test_a_patient_sets_an_override_and_a_second_for_the_same_type_is_400(as_user, user):
    body = {"metric_type": "oxygen_saturation", "warn_low": 88, "critical_low": 85, "min_readings": 2}
    response = as_user.post(RULES, body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["patient"] == str(user.pk)
    assert response.json()["version"] == 1
    again = as_user.post(RULES, body, format="json")
    assert again.status_code == 400
    assert again.json()["errors"][0]["attr"] == "metric_type"


def test_a_consented_clinician_sets_an_athletes_lower_heart_rate_floor(as_clinician, clinician, user):
    body = {"patient": str(user.pk), "metric_type": "heart_rate", "warn_low": 38, "critical_low": 32, "warn_high": 120}
    assert as_clinician.post(RULES, body, format="json").status_code == 400  # no consent: no such patient
    without_patient = as_clinician.post(RULES, {k: v for k, v in body.items() if k != "patient"}, format="json")
    assert without_patient.status_code == 400
    assert without_patient.json()["errors"][0]["attr"] == "patient"
    CareTeamGrantFactory(patient=user, clinician=clinician)
    response = as_clinician.post(RULES, body, format="json")
    assert response.status_code == 201, response.json()
    rule = AlertRule.objects.get(pk=response.json()["id"])
    assert (rule.user, rule.created_by, rule.warn_low) == (user, clinician, 38)
    changed = as_clinician.patch(f"{RULES}{rule.pk}/", {"warn_low": 36}, format="json")
    assert changed.json()["version"] == 2
    unchanged = as_clinician.patch(f"{RULES}{rule.pk}/", {"notes": "marathon runner"}, format="json")
    assert unchanged.json()["version"] == 2


def test_deleting_an_override_switches_it_off_and_the_default_applies_again(as_user, user):
    rule_id = as_user.post(RULES, {"metric_type": "blood_glucose", "warn_low": 60}, format="json").json()["id"]
    assert as_user.delete(f"{RULES}{rule_id}/").status_code == 204
    assert not AlertRule.objects.get(pk=rule_id).is_active
    assert as_user.get(RULES).json()["results"] == []
    assert as_user.post(RULES, {"metric_type": "blood_glucose", "warn_low": 62}, format="json").status_code == 201


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"metric_type": "blood_glucose"}, "warn_high"),
        ({"metric_type": "blood_glucose", "warn_low": 80, "warn_high": 70}, "warn_low"),
        ({"metric_type": "nonsense", "warn_low": 60}, "metric_type"),
        ({"metric_type": "blood_glucose", "warn_low": "low"}, "warn_low"),
        ({"metric_type": "resting_heart_rate", "kind": "baseline", "z_threshold": 0.2}, "z_threshold"),
    ],
)
def test_bad_overrides_are_400_naming_the_field(as_user, body, attr):
    response = as_user.post(RULES, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == attr


def test_another_patients_override_is_404_and_defaults_are_listed_for_anyone(as_user, other_user):
    theirs = AlertRule.objects.create(user=other_user, metric_type_id=GLUCOSE, warn_low=60)
    assert as_user.get(f"{RULES}{theirs.pk}/").status_code == 404
    assert as_user.patch(f"{RULES}{theirs.pk}/", {"warn_low": 10}, format="json").status_code == 404
    defaults = as_user.get(f"{RULES}defaults/").json()
    bp = next(r for r in defaults if r["metric_type"] == "blood_pressure" and r["kind"] == "threshold")
    assert (bp["critical_high"], bp["confirm_minutes"], bp["patient"]) == (180, 15, None)
