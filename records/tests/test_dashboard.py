"""`GET dashboard/`: the home screen in one request and a constant number of queries (issue #11 §3)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AccessLog
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory, UserFactory
from conftest import bearer
from health_metrics.models import AlertRule, DailyHealthScore, HealthAlert
from health_metrics.tests.factories import ReadingFactory, TargetFactory
from iot_devices.models import DeviceAlert
from iot_devices.tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/dashboard/"


def open_alert(patient, value=50):
    """An open alert on a type and direction the patient has none open on yet (one episode per pair)."""
    taken = set(HealthAlert.objects.filter(user=patient).values_list("metric_type_id", "direction"))
    rules = AlertRule.objects.filter(user=None, kind="threshold").order_by("metric_type_id")
    rule, direction = next((r, d) for r in rules for d in ("low", "high") if (r.metric_type_id, d) not in taken)
    now = timezone.now()
    return HealthAlert.objects.create(
        user=patient,
        metric_type_id=rule.metric_type_id,
        rule=rule,
        rule_version=rule.version,
        severity="critical",
        direction=direction,
        message="Out of range.",
        value=value,
        started_at=now,
        last_reading_at=now,
    )


def home_screen(patient, n=1):
    """n of everything: readings of each vital, targets, alerts, devices with open alerts."""
    now = timezone.now()
    for i in range(n):
        ReadingFactory(user=patient, metric_type_id=2, value=70 + i, recorded_at=now - timedelta(minutes=10 + i))
        ReadingFactory(
            user=patient,
            metric_type_id=1,
            value=120 + i,
            secondary_value=80,
            original_unit="mm[Hg]",
            recorded_at=now - timedelta(minutes=20 + i),
        )
        ReadingFactory(
            user=patient,
            metric_type_id=27,
            value=1000,
            original_unit="{steps}",
            recorded_at=now - timedelta(minutes=5 + i),
        )
        open_alert(patient, value=50 - i)
        device = DeviceFactory(owner=patient, battery_level=7)
        DeviceAlert.objects.create(device=device, kind="low_battery", message="Battery at 7%.")
    if not DailyHealthScore.objects.filter(user=patient).exists():
        TargetFactory(user=patient, metric_type_id=27, target_value=8000)
        DailyHealthScore.objects.create(user=patient, local_date=timezone.localdate(), score=81, parts=[])


def test_the_dashboard_answers_every_section(user, as_user):
    home_screen(user)

    response = as_user.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["patient"] == str(user.pk)
    vitals = {vital["metric_type"]: vital for vital in body["latest_vitals"]}
    assert vitals["blood_pressure"]["display_value"] == "120/80"
    assert (vitals["heart_rate"]["value"], vitals["heart_rate"]["unit_label"]) == (70, "bpm")
    (steps,) = body["targets"]
    assert (steps["metric_type"], steps["target_value"], steps["current"]) == ("steps", 8000, 1000)
    assert steps["percent"] == 12.5
    assert not steps["achieved"]
    assert body["open_alert_count"] == 1
    assert body["open_alerts"][0]["severity"] == "critical"
    assert body["health_score"]["score"] == 81
    (device,) = body["devices_needing_attention"]
    assert device["battery_level"] == 7
    assert [alert["kind"] for alert in device["alerts"]] == ["low_battery"]


def test_a_resolved_device_alert_needs_no_attention(user, as_user):
    device = DeviceFactory(owner=user)
    DeviceAlert.objects.create(device=device, kind="offline", message="Not seen for 2 h.", resolved_at=timezone.now())

    assert as_user.get(URL).json()["devices_needing_attention"] == []


def test_the_dashboard_costs_the_same_queries_for_more_data(as_user, user):
    home_screen(user, n=1)
    with CaptureQueriesContext(connection) as few:
        assert as_user.get(URL).status_code == 200
    home_screen(user, n=6)
    with CaptureQueriesContext(connection) as many:
        body = as_user.get(URL).json()

    assert body["open_alert_count"] == 7
    assert len(body["devices_needing_attention"]) == 7
    assert len(many) == len(few), [q["sql"][:80] for q in many.captured_queries]


def test_another_patients_dashboard_is_404_and_a_consented_clinician_reads_it_logged(api_client, user):
    home_screen(user)
    stranger = bearer(api_client, UserFactory(email="stranger@example.org"))
    assert stranger.get(URL, {"patient": str(user.pk)}).status_code == 404
    own = stranger.get(URL).json()
    assert (own["latest_vitals"], own["open_alerts"], own["devices_needing_attention"]) == ([], [], [])

    clinician = ClinicianFactory(email="dr.home@example.org")
    CareTeamGrantFactory(patient=user, clinician=clinician)
    answer = bearer(api_client, clinician).get(URL, {"patient": str(user.pk)})
    assert answer.status_code == 200
    assert answer.json()["open_alert_count"] == 1
    assert AccessLog.objects.filter(actor=clinician, patient=user, resource="dashboard").exists()


def test_units_follow_the_request(user, as_user):
    ReadingFactory(user=user, metric_type_id=2, value=64.4)

    assert as_user.get(URL, {"units": "imperial"}).json()["latest_vitals"][0]["display_value"] == "64"
    assert as_user.get(URL, {"units": "parsecs"}).status_code == 400
