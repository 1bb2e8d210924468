"""Who sees whose readings: consent and its scope, `?patient=`, 404s, and the access log."""

import pytest
from django.utils import timezone

from accounts.models import AccessLog
from accounts.tests.factories import CareTeamGrantFactory
from conftest import bearer
from health_metrics.models import Reading
from health_metrics.tests.factories import ReadingFactory, set_timezone

pytestmark = pytest.mark.django_db

URL = "/api/v1/health-metrics/"


@pytest.fixture
def consent(user, clinician):
    return CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])


@pytest.fixture
def as_clinician(api_client, clinician):
    return bearer(api_client, clinician)


def log_rows(clinician):
    return list(
        AccessLog.objects.filter(actor=clinician)
        .order_by("id")
        .values_list("patient_id", "resource", "action", "object_id")
    )


# --- lists and reads with consent ---------------------------------------------------------------


def test_a_consented_clinician_lists_the_patients_readings(as_clinician, clinician, user, other_user, consent):
    mine = ReadingFactory.create_batch(3, user=user)
    ReadingFactory(user=other_user)
    response = as_clinician.get(URL, {"patient": str(user.pk)})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert {r["id"] for r in body["results"]} == {str(r.pk) for r in mine}
    assert {r["patient"] for r in body["results"]} == {str(user.pk)}


def test_each_list_request_writes_one_access_log_row(as_clinician, clinician, user, consent):
    ReadingFactory.create_batch(3, user=user)
    as_clinician.get(URL, {"patient": str(user.pk)})
    assert log_rows(clinician) == [(user.pk, "reading", "list", "")]
    as_clinician.get(URL, {"patient": str(user.pk)})
    assert log_rows(clinician) == [(user.pk, "reading", "list", "")] * 2


def test_the_list_filters_apply_to_the_patients_readings(as_clinician, user, consent):
    ReadingFactory(user=user)
    ReadingFactory(user=user, metric_type_id=16, value=80, original_unit="kg")
    body = as_clinician.get(URL, {"patient": str(user.pk), "metric_type": "weight"}).json()
    assert [r["metric_type"] for r in body["results"]] == ["body_weight"]


def test_a_consented_clinician_reads_one_reading_and_it_is_logged(as_clinician, clinician, user, consent):
    reading = ReadingFactory(user=user, value=77)
    response = as_clinician.get(f"{URL}{reading.pk}/")
    assert response.status_code == 200
    assert response.json()["value"] == 77
    assert log_rows(clinician) == [(user.pk, "reading", "read", str(reading.pk))]


def test_the_patient_reading_their_own_data_is_not_logged(as_user, user):
    reading = ReadingFactory(user=user)
    assert as_user.get(URL, {"patient": str(user.pk)}).status_code == 200
    assert as_user.get(f"{URL}{reading.pk}/").status_code == 200
    assert not AccessLog.objects.exists()


@pytest.mark.parametrize("action", ["summary", "trends", "stats"])
def test_aggregates_of_a_consented_patient_are_200_and_logged(as_clinician, clinician, user, consent, action):
    ReadingFactory(user=user, value=70)
    response = as_clinician.get(f"{URL}{action}/", {"patient": str(user.pk), "metric_type": "heart_rate"})
    assert response.status_code == 200, response.json()
    assert log_rows(clinician) == [(user.pk, f"reading-{action}", "read", "")]


def test_the_stats_a_clinician_sees_are_the_patients(as_clinician, user, consent):
    ReadingFactory(user=user, value=70)
    ReadingFactory(user=user, value=80)
    (heart_rate,) = as_clinician.get(f"{URL}stats/", {"patient": str(user.pk)}).json()
    assert (heart_rate["count"], heart_rate["mean"]) == (2, 75)


def test_the_summary_uses_the_patients_time_zone(as_clinician, user, consent):
    set_timezone(user, "Asia/Tokyo")
    body = as_clinician.get(f"{URL}summary/", {"patient": str(user.pk), "metric_type": "heart_rate"}).json()
    assert body["timezone"] == "Asia/Tokyo"


# --- no consent, the wrong scope, someone else --------------------------------------------------


def test_a_clinician_without_consent_gets_404(as_clinician, clinician, user):
    reading = ReadingFactory(user=user)
    response = as_clinician.get(URL, {"patient": str(user.pk)})
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"
    assert as_clinician.get(f"{URL}{reading.pk}/").status_code == 404
    assert as_clinician.get(URL).json()["count"] == 0
    assert not AccessLog.objects.exists()


@pytest.mark.parametrize("action", ["summary", "trends", "stats"])
def test_aggregates_without_consent_are_404(as_clinician, user, action):
    ReadingFactory(user=user)
    response = as_clinician.get(f"{URL}{action}/", {"patient": str(user.pk), "metric_type": "heart_rate"})
    assert response.status_code == 404
    assert not AccessLog.objects.exists()


def test_consent_for_appointments_only_does_not_open_metrics(as_clinician, user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["appointments"])
    reading = ReadingFactory(user=user)
    assert as_clinician.get(URL, {"patient": str(user.pk)}).status_code == 404
    assert as_clinician.get(f"{URL}{reading.pk}/").status_code == 404
    assert as_clinician.get(f"{URL}stats/", {"patient": str(user.pk)}).status_code == 404
    assert not AccessLog.objects.exists()


def test_revoked_consent_closes_access(as_clinician, user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician, revoked_at=timezone.now())
    reading = ReadingFactory(user=user)
    assert as_clinician.get(URL, {"patient": str(user.pk)}).status_code == 404
    assert as_clinician.get(f"{URL}{reading.pk}/").status_code == 404


def test_a_patient_passing_someone_elses_id_gets_404(as_user, other_user):
    reading = ReadingFactory(user=other_user)
    for path in ("", "summary/", "trends/", "stats/"):
        response = as_user.get(f"{URL}{path}", {"patient": str(other_user.pk), "metric_type": "heart_rate"})
        assert response.status_code == 404, path
    assert as_user.get(f"{URL}{reading.pk}/").status_code == 404
    assert not AccessLog.objects.exists()


def test_a_patient_id_that_is_not_a_uuid_is_400(as_user):
    response = as_user.get(URL, {"patient": "me"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "patient"


def test_an_outsider_cannot_change_or_delete_a_reading(api_client, user, other_user):
    reading = ReadingFactory(user=user, value=70)
    client = bearer(api_client, other_user)
    assert client.patch(f"{URL}{reading.pk}/", {"value": 99}, format="json").status_code == 404
    assert client.delete(f"{URL}{reading.pk}/").status_code == 404
    reading.refresh_from_db()
    assert reading.value == 70


# --- clinicians read, never write ------------------------------------------------------------------


def test_a_consented_clinician_cannot_edit_a_reading(as_clinician, user, consent):
    reading = ReadingFactory(user=user, value=70)
    response = as_clinician.patch(f"{URL}{reading.pk}/", {"value": 99}, format="json")
    assert response.status_code == 403
    reading.refresh_from_db()
    assert (reading.value, reading.original_value) == (70, 70)


def test_a_consented_clinician_cannot_delete_a_reading(as_clinician, user, consent):
    reading = ReadingFactory(user=user, value=70)
    assert as_clinician.delete(f"{URL}{reading.pk}/").status_code == 403
    assert Reading.objects.filter(pk=reading.pk).exists()


def test_a_clinician_records_readings_only_as_themselves(as_clinician, clinician, user, consent):
    response = as_clinician.post(
        URL, {"metric_type": "heart_rate", "value": 70, "recorded_at": "2026-11-20T08:00:00Z"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["patient"] == str(clinician.pk)
    assert not Reading.objects.filter(user=user).exists()


def test_staff_see_every_patients_readings_and_are_logged(api_client, staff, user):
    reading = ReadingFactory(user=user)
    response = bearer(api_client, staff).get(f"{URL}{reading.pk}/")
    assert response.status_code == 200
    assert list(AccessLog.objects.filter(actor=staff).values_list("patient_id", "action", "object_id")) == [
        (user.pk, "read", str(reading.pk))
    ]


def test_a_list_across_patients_logs_one_row_per_patient(as_clinician, clinician, user, other_user, consent):
    CareTeamGrantFactory(patient=other_user, clinician=clinician, scopes=["metrics"])
    ReadingFactory.create_batch(2, user=user)
    ReadingFactory.create_batch(3, user=other_user)
    ReadingFactory(user=clinician)
    assert as_clinician.get(URL).json()["count"] == 6
    assert sorted(log_rows(clinician)) == sorted(
        [(user.pk, "reading", "list", ""), (other_user.pk, "reading", "list", "")]
    )
