"""patients/: the medical profile, latest vitals and open alerts only under the metrics scope, at a fixed query cost."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AccessLog
from accounts.tests.factories import CareTeamGrantFactory, UserFactory
from conftest import bearer
from health_metrics.selectors import latest_readings
from health_metrics.services import app_data_source
from health_metrics.tests.factories import ReadingFactory
from health_metrics.tests.outsider import _health_alert

pytestmark = pytest.mark.django_db

BLOOD_PRESSURE, HEART_RATE, BLOOD_GLUCOSE, STEPS = 1, 2, 9, 27


def _ago(**delta):
    return timezone.now() - timedelta(**delta)


def _blood_pressure(patient, systolic, diastolic, at):
    return ReadingFactory(
        user=patient,
        metric_type_id=BLOOD_PRESSURE,
        value=systolic,
        secondary_value=diastolic,
        original_secondary_value=diastolic,
        original_unit="mm[Hg]",
        recorded_at=at,
    )


def _patient(client, patient_id):
    response = client.get(f"/api/v1/patients/{patient_id}/")
    assert response.status_code == 200
    return response.json()


def test_a_consented_clinician_sees_the_newest_reading_of_each_vital(api_client, user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician)
    ReadingFactory(user=user, value=61, recorded_at=_ago(hours=5))
    newest_pulse = ReadingFactory(user=user, value=88, recorded_at=_ago(hours=2), is_abnormal=False)
    ReadingFactory(user=user, value=130, recorded_at=_ago(hours=3), is_abnormal=True)
    _blood_pressure(user, 150, 95, _ago(days=2))
    pressure = _blood_pressure(user, 120, 80, _ago(days=1))
    ReadingFactory(user=user, metric_type_id=STEPS, value=4000, original_unit="{steps}")  # not a vital sign
    ReadingFactory(value=99, recorded_at=_ago(minutes=1))  # someone else's, newer

    body = _patient(bearer(api_client, clinician), user.pk)

    assert body["latest_vitals"] == [
        {
            "metric_type": "blood_pressure",
            "value": 120.0,
            "secondary_value": 80.0,
            "display_value": "120/80",
            "unit": "mm[Hg]",
            "unit_label": "mmHg",
            "display_unit": "mm[Hg]",
            "display_unit_label": "mmHg",
            "recorded_at": pressure.recorded_at.isoformat().replace("+00:00", "Z"),
            "is_abnormal": False,
        },
        {
            "metric_type": "heart_rate",
            "value": 88.0,
            "secondary_value": None,
            "display_value": "88",
            "unit": "/min",
            "unit_label": "bpm",
            "display_unit": "/min",
            "display_unit_label": "bpm",
            "recorded_at": newest_pulse.recorded_at.isoformat().replace("+00:00", "Z"),
            "is_abnormal": False,
        },
    ]


def test_open_alerts_come_in_triage_order_without_resolved_ones(api_client, user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician)
    acknowledged_critical = _health_alert(
        user, metric_type_id=HEART_RATE, direction="high", status="acknowledged", started_at=_ago(hours=1)
    )
    open_warning = _health_alert(
        user, metric_type_id=BLOOD_PRESSURE, direction="high", severity="warning", started_at=_ago(minutes=5)
    )
    open_critical = _health_alert(user, started_at=_ago(hours=3), message="Blood glucose below 54 mg/dL.")
    _health_alert(user, direction="high", status="resolved", resolved_at=_ago(minutes=1), started_at=_ago(hours=2))
    _health_alert(UserFactory())  # another patient's

    body = _patient(bearer(api_client, clinician), user.pk)

    assert [alert["id"] for alert in body["open_alerts"]] == [
        str(open_critical.pk),
        str(open_warning.pk),
        str(acknowledged_critical.pk),
    ]
    assert body["open_alerts"][0] == {
        "id": str(open_critical.pk),
        "metric_type": "blood_glucose",
        "severity": "critical",
        "status": "open",
        "message": "Blood glucose below 54 mg/dL.",
        "started_at": open_critical.started_at.isoformat().replace("+00:00", "Z"),
    }
    assert body["open_alert_count"] == 3


def test_a_patient_without_readings_or_alerts_has_empty_lists(api_client, user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician)
    body = _patient(bearer(api_client, clinician), user.pk)
    assert (body["latest_vitals"], body["open_alerts"], body["open_alert_count"]) == ([], [], 0)


def test_an_appointments_only_grant_shows_the_patient_without_vitals_or_alerts(api_client, user, other_user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["appointments"])
    CareTeamGrantFactory(patient=other_user, clinician=clinician, scopes=["metrics"])
    for patient in (user, other_user):
        ReadingFactory(user=patient)
        _health_alert(patient)
    client = bearer(api_client, clinician)

    listed = {p["id"]: p for p in client.get("/api/v1/patients/").json()["results"]}
    retrieved = _patient(client, user.pk)

    for body in (listed[str(user.pk)], retrieved):
        assert (body["latest_vitals"], body["open_alerts"], body["open_alert_count"]) == (None, None, None)
    consented = listed[str(other_user.pk)]
    assert [v["metric_type"] for v in consented["latest_vitals"]] == ["heart_rate"]
    assert consented["open_alert_count"] == 1


def test_the_medical_profile_needs_the_metrics_scope_and_name_and_email_do_not(api_client, user, other_user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["appointments", "medications"])
    CareTeamGrantFactory(patient=other_user, clinician=clinician, scopes=["metrics"])
    for patient in (user, other_user):
        patient.profile.blood_type, patient.profile.conditions = "AB-", ["Asthma"]
        patient.profile.save()
        patient.profile.emergency_contacts.create(name="Kim", phone="+1 555 0100")
    client = bearer(api_client, clinician)

    listed = {p["id"]: p for p in client.get("/api/v1/patients/").json()["results"]}
    for body in (listed[str(user.pk)], _patient(client, user.pk)):
        assert body["profile"] is None
        assert (body["email"], body["first_name"]) == (user.email, user.first_name)
        assert body["access"]["scopes"] == ["appointments", "medications"]
    profile = listed[str(other_user.pk)]["profile"]
    assert (profile["blood_type"], profile["conditions"]) == ("AB-", ["Asthma"])
    assert [c["name"] for c in profile["emergency_contacts"]] == ["Kim"]


def test_staff_see_vitals_and_alerts_of_every_patient(api_client, user, staff):
    ReadingFactory(user=user, value=70)
    _health_alert(user)

    body = _patient(bearer(api_client, staff), user.pk)

    assert [(v["metric_type"], v["value"]) for v in body["latest_vitals"]] == [("heart_rate", 70.0)]
    assert body["open_alert_count"] == 1


def test_a_patient_who_has_not_consented_is_not_found(api_client, user, other_user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician)
    CareTeamGrantFactory(patient=other_user)  # consented to another clinician
    ReadingFactory(user=other_user)
    client = bearer(api_client, clinician)
    assert client.get(f"/api/v1/patients/{other_user.pk}/").status_code == 404
    assert [p["id"] for p in client.get("/api/v1/patients/").json()["results"]] == [str(user.pk)]


def test_the_list_costs_the_same_queries_for_two_and_six_patients(api_client, clinician):
    def add_patient():
        patient = CareTeamGrantFactory(clinician=clinician).patient
        ReadingFactory(user=patient, recorded_at=_ago(hours=2))
        ReadingFactory(user=patient, recorded_at=_ago(hours=1))
        _blood_pressure(patient, 118, 76, _ago(hours=1))
        _health_alert(patient)
        _health_alert(patient, metric_type_id=HEART_RATE, direction="high", severity="warning")

    def count_queries():
        with CaptureQueriesContext(connection) as captured:
            response = bearer(api_client, clinician).get("/api/v1/patients/")
        results = response.json()["results"]
        assert all(len(p["latest_vitals"]) == 2 and p["open_alert_count"] == 2 for p in results)
        return len(results), len(captured)

    for _ in range(2):
        add_patient()
    two = count_queries()
    for _ in range(4):
        add_patient()
    six = count_queries()
    assert (two[0], six[0]) == (2, 6)
    assert six[1] == two[1]


def test_reads_are_logged_once_per_patient_as_before(api_client, user, other_user, clinician):
    for patient in (user, other_user):
        CareTeamGrantFactory(patient=patient, clinician=clinician)
        ReadingFactory(user=patient)
        _health_alert(patient)
    client = bearer(api_client, clinician)
    client.get("/api/v1/patients/")
    client.get(f"/api/v1/patients/{user.pk}/")
    rows = sorted((str(r.patient_id), r.resource, r.action) for r in AccessLog.objects.all())
    assert rows == sorted(
        [(str(user.pk), "user", "list"), (str(other_user.pk), "user", "list"), (str(user.pk), "user", "read")]
    )


def test_latest_readings_picks_the_last_stored_of_readings_at_the_same_moment(user):
    at = _ago(hours=1)
    ReadingFactory(user=user, value=70, recorded_at=at)
    last = ReadingFactory(user=user, value=71, recorded_at=at, data_source=app_data_source(user=user, kind="import"))
    assert latest_readings(user_ids=[user.pk], type_ids=[HEART_RATE, BLOOD_GLUCOSE]) == {user.pk: [last]}
