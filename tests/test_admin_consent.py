"""The admin holds the consent scopes the API holds, and every look at someone else's record is logged.

Across apps (a clinician's admin spans accounts, health_metrics, iot_devices and records), so it lives here.
"""

from datetime import date

import pytest
from django.utils import timezone

from accounts.models import AccessLog, Scope
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory
from health_metrics.models import AlertRule, DailyHealthScore, DailySummary
from health_metrics.tests.factories import ReadingFactory, TargetFactory
from health_metrics.tests.outsider import _health_alert
from iot_devices.tests.factories import DeviceFactory, IngestBatchFactory
from records.models import ExportJob

pytestmark = pytest.mark.django_db

# One object of the patient's per admin of health data (all under the metrics scope).
HEALTH_DATA = {
    "health_metrics/reading": lambda patient: ReadingFactory(user=patient),
    "health_metrics/dailysummary": lambda patient: DailySummary.objects.create(
        user=patient, metric_type_id=2, local_date=date(2026, 11, 1), count=1, min=70, max=70, mean=70, median=70, sum=7
    ),
    "health_metrics/target": lambda patient: TargetFactory(user=patient),
    "health_metrics/dailyhealthscore": lambda patient: DailyHealthScore.objects.create(
        user=patient, local_date=date(2026, 11, 1), score=80, parts=[]
    ),
    "health_metrics/healthalert": _health_alert,
    "health_metrics/alertrule": lambda patient: AlertRule.objects.create(user=patient, metric_type_id=9, warn_low=60),
    "iot_devices/device": lambda patient: DeviceFactory(owner=patient),
    "iot_devices/ingestbatch": lambda patient: IngestBatchFactory(device=DeviceFactory(owner=patient)),
    "records/exportjob": lambda patient: ExportJob.objects.create(
        requested_by=patient, user=patient, format="csv", start_date=date(2026, 1, 1), end_date=date(2026, 1, 31)
    ),
    "accounts/profile": lambda patient: patient.profile,
}


def listed(response):
    return {obj.pk for obj in response.context["cl"].result_list}


def logged(patient, **filters):
    return list(AccessLog.objects.filter(patient_id=patient.pk, **filters).values_list("action", "object_id"))


@pytest.fixture
def appointments_only(user):
    """dr.silva and bob in the demo: a grant that covers appointments and nothing else."""
    return CareTeamGrantFactory(patient=user, scopes=[Scope.APPOINTMENTS]).clinician


@pytest.fixture
def metrics_clinician(user):
    return CareTeamGrantFactory(patient=user, scopes=[Scope.METRICS]).clinician


@pytest.mark.parametrize("page", HEALTH_DATA)
def test_an_appointments_only_grant_shows_none_of_the_patients_health_data(client, user, appointments_only, page):
    obj = HEALTH_DATA[page](user)
    client.force_login(appointments_only)
    changelist = client.get(f"/admin/{page}/")
    assert changelist.status_code == 200
    assert obj.pk not in listed(changelist)
    change = client.get(f"/admin/{page}/{obj.pk}/change/")
    assert change.status_code == 302
    assert change.url == "/admin/"  # the admin's "does not exist"
    searched = client.get(f"/admin/{page}/", {"q": user.email})
    assert obj.pk not in listed(searched)
    assert logged(user) == []


@pytest.mark.parametrize("page", HEALTH_DATA)
def test_a_metrics_grant_shows_the_health_data_and_each_page_is_logged(client, user, metrics_clinician, page):
    obj = HEALTH_DATA[page](user)
    client.force_login(metrics_clinician)
    assert obj.pk in listed(client.get(f"/admin/{page}/"))
    assert logged(user) == [("list", "")]
    assert client.get(f"/admin/{page}/{obj.pk}/change/").status_code == 200
    assert logged(user, action="read") == [("read", str(obj.pk))]
    resource = page.split("/")[1]
    assert set(AccessLog.objects.filter(patient_id=user.pk).values_list("resource", flat=True)) == {resource}
    assert set(AccessLog.objects.filter(patient_id=user.pk).values_list("actor_id", flat=True)) == {
        metrics_clinician.pk
    }


def test_a_list_page_logs_one_row_per_patient_shown(client, user, other_user, metrics_clinician):
    CareTeamGrantFactory(patient=other_user, clinician=metrics_clinician, scopes=[Scope.METRICS])
    for _ in range(3):
        ReadingFactory(user=user)
    ReadingFactory(user=other_user)
    ReadingFactory(user=metrics_clinician)  # the clinician's own: not logged
    client.force_login(metrics_clinician)
    assert len(listed(client.get("/admin/health_metrics/reading/"))) == 5
    rows = AccessLog.objects.values_list("patient_id", "action", "resource", "object_id")
    assert sorted(rows, key=str) == sorted(
        [(user.pk, "list", "reading", ""), (other_user.pk, "list", "reading", "")], key=str
    )


def test_staff_reads_are_logged_and_a_patients_own_are_not(client, staff, user):
    ReadingFactory(user=user)
    ReadingFactory(user=staff)
    client.force_login(staff)
    client.get("/admin/health_metrics/reading/")
    assert list(AccessLog.objects.values_list("patient_id", "actor_id")) == [(user.pk, staff.pk)]


def test_a_clinician_sees_a_patients_user_page_without_password_hash_or_reset(client, user, metrics_clinician):
    client.force_login(metrics_clinician)
    response = client.get(f"/admin/accounts/user/{user.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert user.email in html
    assert user.password not in html
    assert "md5$" not in html
    assert "../password/" not in html
    assert client.get(f"/admin/accounts/user/{user.pk}/password/").status_code == 403
    assert "Blood type" in html  # the medical profile: the metrics scope covers it
    assert logged(user) == [("read", str(user.pk))]


def test_an_appointments_only_clinician_sees_the_person_but_not_the_medical_profile(client, user, appointments_only):
    user.profile.blood_type = "AB-"
    user.profile.save()
    client.force_login(appointments_only)
    response = client.get(f"/admin/accounts/user/{user.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert user.email in html
    assert "Blood type" not in html
    assert "AB-" not in html
    assert client.get(f"/admin/accounts/profile/{user.pk}/change/").status_code == 302


def test_clinicians_never_delete_clinical_data(client, user, metrics_clinician):
    reading = ReadingFactory(user=user)
    alert = _health_alert(user)
    client.force_login(metrics_clinician)
    for page, obj in (("health_metrics/reading", reading), ("health_metrics/healthalert", alert)):
        assert client.get(f"/admin/{page}/{obj.pk}/delete/").status_code == 403
        assert client.post(f"/admin/{page}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
        changelist = client.get(f"/admin/{page}/")
        assert "delete_selected" not in changelist.content.decode()
        response = client.post(f"/admin/{page}/", {"action": "delete_selected", "_selected_action": [obj.pk]})
        assert response.status_code in (200, 302)
        assert type(obj).objects.filter(pk=obj.pk).exists()


def test_an_expired_grant_shows_nothing_in_the_admin(client, user):
    clinician = CareTeamGrantFactory(
        patient=user, scopes=[Scope.METRICS], expires_at=timezone.now() - timezone.timedelta(minutes=1)
    ).clinician
    reading = ReadingFactory(user=user)
    client.force_login(clinician)
    assert reading.pk not in listed(client.get("/admin/health_metrics/reading/"))
    assert user.pk not in listed(client.get("/admin/accounts/user/"))


def test_a_clinician_sees_only_the_grants_they_hold(client, user, metrics_clinician):
    others = CareTeamGrantFactory(patient=user, clinician=ClinicianFactory(), scopes=[Scope.METRICS])
    client.force_login(metrics_clinician)
    shown = listed(client.get("/admin/accounts/careteamgrant/"))
    assert others.pk not in shown
    assert len(shown) == 1


def test_the_vitals_page_needs_the_metrics_scope(client, user, appointments_only, metrics_clinician):
    client.force_login(appointments_only)
    assert client.get(f"/admin/records/exportjob/patient/{user.pk}/vitals/").status_code == 404
    client.force_login(metrics_clinician)
    assert client.get(f"/admin/records/exportjob/patient/{user.pk}/vitals/").status_code == 200
    assert logged(user) == [("read", "")]


def test_person_autocomplete_for_a_health_data_field_lists_only_patients_under_its_scope(
    client, user, other_user, appointments_only
):
    CareTeamGrantFactory(patient=other_user, clinician=appointments_only, scopes=[Scope.METRICS])
    client.force_login(appointments_only)
    query = {"app_label": "health_metrics", "model_name": "reading", "field_name": "user", "term": ""}
    response = client.get("/admin/autocomplete/", query)
    assert response.status_code == 200
    shown = {row["id"] for row in response.json()["results"]}
    assert str(other_user.pk) in shown
    assert str(user.pk) not in shown  # visible for appointments, not for readings
    grants = {"app_label": "accounts", "model_name": "careteamgrant", "field_name": "patient", "term": ""}
    assert str(user.pk) in {row["id"] for row in client.get("/admin/autocomplete/", grants).json()["results"]}
