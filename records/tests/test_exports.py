"""Exports: exact CSV content, streamed; the PDF's sections, one per page; FHIR that validates; who may export;
large exports as jobs whose files land in storage (local, and S3 over real HTTP via moto); the demo patient."""

import io
import urllib.error
import urllib.request
from datetime import date, timedelta

import boto3
import pytest
from django.core.management import call_command
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from moto.server import ThreadedMotoServer
from pypdf import PdfReader
from rest_framework.test import APIClient

from accounts.models import AccessLog
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory
from conftest import bearer
from health_metrics.ingest import ingest_readings, record_readings
from health_metrics.models import AlertRule, HealthAlert, Reading
from health_metrics.services import app_data_source
from health_metrics.tests.factories import ReadingFactory
from iot_devices.tests.factories import DeviceFactory
from records.exports import requeue_stranded_export_jobs
from records.models import ExportJob
from records.tasks import run_export_job_task

pytestmark = pytest.mark.django_db

URL = "/api/v1/health-metrics/export/"
JOBS = "/api/v1/health-metrics/exports/"
MARCH = {"start_date": "2025-03-01", "end_date": "2025-03-31"}
HEADER = (
    "id,recorded_at_utc,ended_at_utc,local_date,metric_type,loinc,value,secondary_value,unit,"
    "original_value,original_secondary_value,original_unit,source,data_source_id"
)


def record(user, *items, device=None):
    if device is not None:
        outcome = ingest_readings(data_source=device.data_source, items=list(items))
    else:
        outcome = record_readings(user=user, items=list(items))
    assert [r.status for r in outcome.results] == ["created"] * len(items), outcome.results
    return [r.id for r in outcome.results]


def csv_text(response) -> str:
    assert response.status_code == 200, response.content
    assert response.streaming is True
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def march_readings(user):
    """A heart rate from a device, a blood pressure, and a weight in pounds (converted to kg), in March 2025."""
    device = DeviceFactory(owner=user)
    [heart] = record(
        user,
        {
            "metric_type": "heart_rate",
            "value": 72,
            "unit": "bpm",
            "recorded_at": "2025-03-02T07:30:00+01:00",
            "source": "device",
        },
        device=device,
    )
    pressure, weight = record(
        user,
        {"metric_type": "bp", "systolic": 120, "diastolic": 80, "recorded_at": "2025-03-01T23:30:00-05:00"},
        {"metric_type": "weight", "value": 176, "unit": "lb", "recorded_at": "2025-03-03T08:00:00+00:00"},
    )
    return {"device": device, "heart": heart, "pressure": pressure, "weight": weight}


@pytest.fixture
def consent(user, clinician):
    return CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])


@pytest.fixture
def as_clinician(clinician):
    return bearer(APIClient(), clinician)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def open_alert(user, *, type_id: int, message: str, status: str = "open") -> HealthAlert:
    rule = AlertRule.objects.create(user=user, metric_type_id=type_id, warn_high=100)
    now = timezone.now()
    return HealthAlert.objects.create(
        user=user,
        metric_type_id=type_id,
        rule=rule,
        rule_version=rule.version,
        severity="warning",
        direction="high",
        status=status,
        message=message,
        value=150,
        started_at=now - timedelta(hours=2),
        last_reading_at=now,
        resolved_at=now if status == "resolved" else None,
    )


# --- CSV -----------------------------------------------------------------------------------------


def test_the_csv_has_every_reading_in_canonical_and_original_units_oldest_first(as_user, user, march_readings):
    response = as_user.get(URL, {"format": "csv", **MARCH})
    r = march_readings
    manual, watch = app_data_source(user=user).pk, r["device"].data_source_id
    assert csv_text(response).split("\r\n") == [
        HEADER,
        f"{r['pressure']},2025-03-02T04:30:00Z,,2025-03-01,blood_pressure,85354-9,120,80,mm[Hg],120,80,mm[Hg],manual,"
        f"{manual}",
        f"{r['heart']},2025-03-02T06:30:00Z,,2025-03-02,heart_rate,8867-4,72,,/min,72,,bpm,device,{watch}",
        f"{r['weight']},2025-03-03T08:00:00Z,,2025-03-03,body_weight,29463-7,79.83225712,,kg,176,,lb,manual,{manual}",
        "",
    ]
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = 'attachment; filename="openvitals-health-metrics-2025-03-01-to-2025-03-31.csv"'
    assert response["Content-Disposition"] == disposition


def test_the_csv_keeps_to_the_local_days_the_metric_type_and_the_patient(as_user, user, other_user, march_readings):
    record(user, {"metric_type": "heart_rate", "value": 90, "recorded_at": "2025-04-01T00:30:00+02:00"})
    record(other_user, {"metric_type": "heart_rate", "value": 60, "recorded_at": "2025-03-02T09:00:00+00:00"})
    lines = csv_text(as_user.get(URL, {"format": "csv", "metric_type": "Heart Rate", **MARCH})).splitlines()
    assert [line.split(",")[0] for line in lines] == ["id", str(march_readings["heart"])]
    disposition = as_user.get(URL, {"format": "csv", "metric_type": "heart_rate", **MARCH})["Content-Disposition"]
    assert disposition == 'attachment; filename="openvitals-heart_rate-2025-03-01-to-2025-03-31.csv"'


def test_an_empty_period_is_a_csv_with_only_the_header(as_user, march_readings):
    response = as_user.get(URL, {"format": "csv", "start_date": "2024-01-01", "end_date": "2024-01-31"})
    assert csv_text(response) == HEADER + "\r\n"


# --- PDF -----------------------------------------------------------------------------------------


def test_the_pdf_has_one_page_per_section(as_user, user, march_readings):
    record(user, {"metric_type": "heart_rate", "value": 80, "recorded_at": "2025-03-02T18:00:00+01:00"})
    user.last_name = "O'Brien & Sons"
    user.save()
    open_alert(user, type_id=2, message="Heart rate above 100 for 20 minutes (<rest> & walking)")
    open_alert(user, type_id=1, message="Blood pressure above range", status="acknowledged")
    open_alert(user, type_id=16, message="Weight gain over a week", status="resolved")
    response = as_user.get(URL, {"format": "pdf", **MARCH})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].endswith('filename="openvitals-health-metrics-2025-03-01-to-2025-03-31.pdf"')
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages]
    # title, summary, a chart per type (catalog order: blood pressure, heart rate, body weight), open alerts
    assert len(pages) == 6
    assert "Health report" in pages[0]
    assert user.get_full_name() in pages[0]
    assert "2025-03-01 to 2025-03-31" in pages[0]
    assert "Generated at" in pages[0]
    assert "Summary" in pages[1]
    summary = " ".join(pages[1].split())
    assert "Blood pressure mmHg 1 120/80 120/80 120/80" in summary
    assert "Heart rate bpm 2 72 76 80" in summary
    assert "Body weight kg 1 79.8 79.8 79.8" in summary
    assert "Blood pressure: daily mean (mmHg)" in pages[2]
    assert "Heart rate: daily mean (bpm)" in pages[3]
    assert "Body weight: daily mean (kg)" in pages[4]
    assert "Open alerts" in pages[5]
    assert "Heart rate above 100 for 20 minutes (<rest> & walking)" in " ".join(pages[5].split())
    assert "Blood pressure above range" in pages[5]
    assert "Weight gain" not in pages[5]


def test_a_pdf_of_a_period_without_readings_has_title_summary_and_alerts(as_user, user):
    response = as_user.get(URL, {"format": "pdf", **MARCH})
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages]
    assert len(pages) == 3
    assert "No readings in this period." in pages[1]
    assert "No open alerts." in pages[2]


# --- FHIR ----------------------------------------------------------------------------------------


def test_the_fhir_export_is_a_valid_bundle_of_the_patient_and_their_observations(as_user, user, march_readings):
    response = as_user.get(URL, {"format": "fhir", **MARCH})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/fhir+json"
    assert response["Content-Disposition"].endswith(
        'filename="openvitals-health-metrics-2025-03-01-to-2025-03-31.fhir.json"'
    )
    bundle = Bundle.model_validate_json(response.content)
    assert bundle.type == "collection"
    resources = [entry.resource for entry in bundle.entry]
    assert [r.get_resource_type() for r in resources] == ["Patient"] + ["Observation"] * 3
    assert resources[0].id == str(user.pk)
    r = march_readings
    assert [o.id for o in resources[1:]] == [str(r["pressure"]), str(r["heart"]), str(r["weight"])]
    assert float(resources[3].valueQuantity.value) == 79.8  # 79.83225712 kg at weight's one decimal
    assert (resources[3].valueQuantity.unit, resources[3].valueQuantity.code) == ("kg", "kg")


# --- Bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "attr"),
    [
        ({"start_date": "2025-03-01", "end_date": "2025-03-31"}, "format"),
        ({"format": "xml", **MARCH}, "format"),
        ({"format": "csv", "end_date": "2025-03-31"}, "start_date"),
        ({"format": "csv", "start_date": "2025-03-01"}, "end_date"),
        ({"format": "csv", "start_date": "2025-02-30", "end_date": "2025-03-31"}, "start_date"),
        ({"format": "csv", "start_date": "2025-03-01T00:00:00Z", "end_date": "2025-03-31"}, "start_date"),
        ({"format": "csv", "start_date": "2025-03-31", "end_date": "2025-03-01"}, "end_date"),
        ({"format": "csv", "start_date": "2024-01-01", "end_date": "2025-01-01"}, "end_date"),
        ({"format": "csv", "start_date": "2010-01-01", "end_date": "2025-01-01", "async": "true"}, "end_date"),
        ({"format": "csv", "metric_type": "mood_ring", **MARCH}, "metric_type"),
        ({"format": "csv", "patient": "not-a-uuid", **MARCH}, "patient"),
        ({"format": "csv", "async": "maybe", **MARCH}, "async"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(as_user, params, attr):
    response = as_user.get(URL, params)
    assert response.status_code == 400, response.content
    assert [error["attr"] for error in response.json()["errors"]] == [attr]
    assert not ExportJob.objects.exists()


def test_a_year_is_within_the_synchronous_limit(as_user):
    response = as_user.get(URL, {"format": "csv", "start_date": "2024-01-01", "end_date": "2024-12-31"})
    assert csv_text(response) == HEADER + "\r\n"


def test_an_accept_header_for_the_file_type_is_not_refused(as_user, march_readings):
    response = as_user.get(URL, {"format": "pdf", **MARCH}, HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")
    refused = as_user.get(URL, {"format": "pdf"}, HTTP_ACCEPT="application/pdf")
    assert refused.status_code == 400
    assert refused["Content-Type"] == "application/json"


def test_an_anonymous_export_is_401(api_client):
    assert api_client.get(URL, {"format": "csv", **MARCH}).status_code == 401


# --- Who may export whose data ---------------------------------------------------------------------


def test_another_patients_data_is_not_found(as_user, other_user):
    ReadingFactory(user=other_user)
    response = as_user.get(URL, {"format": "csv", "patient": str(other_user.pk), **MARCH})
    assert response.status_code == 404
    assert not AccessLog.objects.exists()


def test_a_clinician_without_consent_gets_404(as_clinician, user, march_readings):
    for fmt in ("csv", "pdf", "fhir"):
        response = as_clinician.get(URL, {"format": fmt, "patient": str(user.pk), **MARCH})
        assert response.status_code == 404
    assert not AccessLog.objects.exists()


def test_a_clinician_consented_for_other_scopes_gets_404(as_clinician, clinician, user, march_readings):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["appointments"])
    response = as_clinician.get(URL, {"format": "csv", "patient": str(user.pk), **MARCH})
    assert response.status_code == 404


def test_a_consented_clinician_exports_the_patients_data_and_it_is_logged(
    as_clinician, clinician, user, consent, march_readings
):
    lines = csv_text(as_clinician.get(URL, {"format": "csv", "patient": str(user.pk), **MARCH})).splitlines()
    assert len(lines) == 4
    assert as_clinician.get(URL, {"format": "pdf", "patient": str(user.pk), **MARCH}).status_code == 200
    rows = AccessLog.objects.filter(actor=clinician).values_list("patient_id", "resource", "action", "object_id")
    assert list(rows) == [(user.pk, "export", "read", "")] * 2


def test_a_clinicians_export_without_patient_is_their_own_data(as_clinician, clinician, user, consent, march_readings):
    assert csv_text(as_clinician.get(URL, {"format": "csv", **MARCH})) == HEADER + "\r\n"
    assert not AccessLog.objects.exists()


# --- Jobs --------------------------------------------------------------------------------------------


def start_job(client, params, django_capture_on_commit_callbacks) -> dict:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(URL, params)
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"id", "status", "url"}
    assert body["status"] == "pending"  # as it was answered; the worker ran on commit
    assert body["url"] == f"http://testserver{JOBS}{body['id']}/"
    return body


def test_an_async_export_is_a_job_whose_file_is_downloaded_through_the_api(
    as_user, user, march_readings, media, django_capture_on_commit_callbacks
):
    expected = csv_text(as_user.get(URL, {"format": "csv", **MARCH}))
    started = start_job(as_user, {"format": "csv", "async": "true", **MARCH}, django_capture_on_commit_callbacks)
    job = as_user.get(started["url"]).json()
    assert job["status"] == "done"
    assert (job["row_count"], job["size_bytes"], job["error"]) == (3, len(expected), "")
    assert (job["patient"], job["requested_by"], job["format"], job["metric_type"]) == (
        str(user.pk),
        str(user.pk),
        "csv",
        None,
    )
    assert job["download_url"] == f"http://testserver{JOBS}{job['id']}/download/"
    stored = ExportJob.objects.get(pk=job["id"]).file.name
    assert stored.startswith(f"exports/{timezone.now():%Y/%m}/openvitals-health-metrics-2025-03-01-to-2025-03-31")
    assert (media / stored).exists()
    download = as_user.get(job["download_url"], HTTP_ACCEPT="text/csv")
    assert download.status_code == 200
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert download["Content-Disposition"] == (
        'attachment; filename="openvitals-health-metrics-2025-03-01-to-2025-03-31.csv"'
    )
    assert b"".join(download.streaming_content).decode() == expected
    assert [j["id"] for j in as_user.get(JOBS).json()["results"]] == [job["id"]]


def test_more_readings_than_the_limit_make_a_job_without_asking(
    as_user, user, march_readings, media, settings, django_capture_on_commit_callbacks
):
    settings.EXPORT_SYNC_MAX_READINGS = 2
    started = start_job(as_user, {"format": "pdf", **MARCH}, django_capture_on_commit_callbacks)
    job = as_user.get(started["url"]).json()
    assert (job["status"], job["format"], job["row_count"]) == ("done", "pdf", 3)
    pdf = PdfReader(io.BytesIO(b"".join(as_user.get(job["download_url"]).streaming_content)))
    assert len(pdf.pages) == 6
    settings.EXPORT_SYNC_MAX_READINGS = 3
    assert as_user.get(URL, {"format": "pdf", **MARCH}).status_code == 200


def test_a_fhir_job_with_a_metric_type(as_user, march_readings, media, django_capture_on_commit_callbacks):
    params = {"format": "fhir", "async": "true", "metric_type": "bp", **MARCH}
    started = start_job(as_user, params, django_capture_on_commit_callbacks)
    job = as_user.get(started["url"]).json()
    assert (job["status"], job["metric_type"], job["row_count"]) == ("done", "blood_pressure", 1)
    download = as_user.get(job["download_url"])
    assert download["Content-Type"] == "application/fhir+json"
    bundle = Bundle.model_validate_json(b"".join(download.streaming_content))
    assert [entry.resource.id for entry in bundle.entry][1:] == [str(march_readings["pressure"])]


def test_running_the_job_again_changes_nothing(as_user, march_readings, media, django_capture_on_commit_callbacks):
    started = start_job(as_user, {"format": "csv", "async": "true", **MARCH}, django_capture_on_commit_callbacks)
    before = ExportJob.objects.values().get(pk=started["id"])
    run_export_job_task(started["id"])
    assert ExportJob.objects.values().get(pk=started["id"]) == before
    assert len(list(media.rglob("*.csv"))) == 1


def test_a_job_the_broker_never_delivered_is_run_by_the_sweeper(as_user, user, march_readings, media):
    job = ExportJob.objects.create(
        requested_by=user, user=user, format="csv", start_date=date(2025, 3, 1), end_date=date(2025, 3, 31)
    )
    assert requeue_stranded_export_jobs() == 0  # just made: a worker may still be about to take it
    ExportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=3))
    assert requeue_stranded_export_jobs() == 1  # eager in tests: the worker's run happens here
    job.refresh_from_db()
    assert (job.status, job.row_count) == ("done", 3)
    assert requeue_stranded_export_jobs() == 0


def test_a_job_whose_worker_died_is_run_again_but_one_being_made_is_left_alone(as_user, user, march_readings, media):
    job = ExportJob.objects.create(
        requested_by=user,
        user=user,
        format="csv",
        start_date=date(2025, 3, 1),
        end_date=date(2025, 3, 31),
        status="running",
        started_at=timezone.now() - timedelta(minutes=1),
    )
    run_export_job_task(str(job.pk))  # a second delivery while a worker is on it
    job.refresh_from_db()
    assert job.status == "running"
    assert requeue_stranded_export_jobs() == 0
    ExportJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(minutes=13))
    assert requeue_stranded_export_jobs() == 1
    job.refresh_from_db()
    assert (job.status, job.row_count) == ("done", 3)


def test_another_patients_job_and_its_download_are_not_found(as_user, other_user, media):
    job = ExportJob.objects.create(
        requested_by=other_user, user=other_user, format="csv", start_date=date(2025, 3, 1), end_date=date(2025, 3, 31)
    )
    assert as_user.get(f"{JOBS}{job.pk}/").status_code == 404
    assert as_user.get(f"{JOBS}{job.pk}/download/").status_code == 404
    assert as_user.get(JOBS).json()["count"] == 0


def test_a_job_not_yet_done_has_no_download(as_user, user, media):
    job = ExportJob.objects.create(
        requested_by=user, user=user, format="csv", start_date=date(2025, 3, 1), end_date=date(2025, 3, 31)
    )
    assert as_user.get(f"{JOBS}{job.pk}/").json()["download_url"] is None
    response = as_user.get(f"{JOBS}{job.pk}/download/")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "not_ready"


def test_a_long_period_is_exported_by_a_job(as_user, user, media, django_capture_on_commit_callbacks):
    record(user, {"metric_type": "heart_rate", "value": 64, "recorded_at": "2023-06-01T12:00:00+00:00"})
    params = {"format": "csv", "start_date": "2023-01-01", "end_date": "2025-03-31", "async": "true"}
    job = as_user.get(start_job(as_user, params, django_capture_on_commit_callbacks)["url"]).json()
    assert (job["status"], job["row_count"]) == ("done", 1)


def test_who_sees_a_job_a_clinician_made(
    as_clinician, clinician, user, consent, march_readings, media, django_capture_on_commit_callbacks
):
    params = {"format": "csv", "async": "true", "patient": str(user.pk), **MARCH}
    started = start_job(as_clinician, params, django_capture_on_commit_callbacks)
    logged = AccessLog.objects.filter(actor=clinician).values_list("patient_id", "resource", "action", "object_id")
    assert list(logged) == [(user.pk, "export", "read", started["id"])]
    job_url = f"{JOBS}{started['id']}/"
    download = f"{job_url}download/"

    assert as_clinician.get(job_url).json()["row_count"] == 3
    assert as_clinician.get(download).status_code == 200
    assert AccessLog.objects.filter(actor=clinician, resource="exportjob", object_id=started["id"]).count() == 2
    patient = bearer(APIClient(), user)  # their own data
    assert patient.get(job_url).json()["requested_by"] == str(clinician.pk)
    assert patient.get(download).status_code == 200

    colleague = ClinicianFactory()
    CareTeamGrantFactory(patient=user, clinician=colleague, scopes=["metrics"])
    as_colleague = bearer(APIClient(), colleague)  # may see the patient, but did not ask for this file
    assert as_colleague.get(job_url).status_code == 404
    assert as_colleague.get(download).status_code == 404
    assert as_colleague.get(JOBS).json()["count"] == 0

    consent.revoked_at = timezone.now()
    consent.save()
    assert as_clinician.get(job_url).status_code == 404
    assert as_clinician.get(download).status_code == 404


def test_a_patients_own_job_is_not_seen_by_their_clinician(
    as_user, as_clinician, consent, march_readings, media, django_capture_on_commit_callbacks
):
    started = start_job(as_user, {"format": "csv", "async": "true", **MARCH}, django_capture_on_commit_callbacks)
    assert as_clinician.get(f"{JOBS}{started['id']}/").status_code == 404


# --- S3 (moto in server mode, over real HTTP) -------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def use_s3(settings, endpoint: str, bucket: str) -> None:
    """The default storage as base.py builds it when AWS_STORAGE_BUCKET_NAME is set, against moto."""
    options = {
        "bucket_name": bucket,
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "access_key": "testing",
        "secret_key": "testing",
        "signature_version": "s3v4",
        "file_overwrite": False,
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": 600,
    }
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }


@pytest.fixture
def s3_bucket(settings, s3_endpoint):
    bucket = f"exports-{timezone.now():%H%M%S%f}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    use_s3(settings, s3_endpoint, bucket)
    return client, bucket


def test_on_s3_the_download_url_is_a_presigned_link_to_the_file(
    as_user, march_readings, s3_bucket, django_capture_on_commit_callbacks
):
    client, bucket = s3_bucket
    expected = csv_text(as_user.get(URL, {"format": "csv", **MARCH})).encode()
    started = start_job(as_user, {"format": "csv", "async": "true", **MARCH}, django_capture_on_commit_callbacks)
    job = as_user.get(started["url"]).json()
    assert (job["status"], job["size_bytes"]) == ("done", len(expected))
    [stored] = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert stored == ExportJob.objects.get(pk=job["id"]).file.name
    assert job["download_url"].startswith(f"{client.meta.endpoint_url}/{bucket}/{stored}?")
    assert "X-Amz-Signature=" in job["download_url"]
    with urllib.request.urlopen(job["download_url"], timeout=10) as response:  # noqa: S310 - our moto server
        assert response.read() == expected
        assert response.headers["Content-Disposition"] == (
            'attachment; filename="openvitals-health-metrics-2025-03-01-to-2025-03-31.csv"'
        )
    unsigned = job["download_url"].split("?")[0]
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(unsigned, timeout=10)  # noqa: S310
    download = as_user.get(f"{JOBS}{job['id']}/download/")  # the API route still serves it, from the bucket
    assert b"".join(download.streaming_content) == expected


def test_a_job_whose_storage_fails_is_marked_failed(
    as_user, march_readings, settings, s3_endpoint, django_capture_on_commit_callbacks
):
    use_s3(settings, s3_endpoint, "no-such-bucket")
    started = start_job(as_user, {"format": "csv", "async": "true", **MARCH}, django_capture_on_commit_callbacks)
    job = as_user.get(started["url"]).json()
    assert job["status"] == "failed"
    assert "NoSuchBucket" in job["error"]
    assert job["download_url"] is None
    assert job["finished_at"] is not None


# --- The demo ----------------------------------------------------------------------------------------------


def test_the_demo_patient_has_open_alerts_a_score_history_and_downloads_csv_pdf_and_fhir(api_client):
    call_command("seed_demo", stdout=io.StringIO())
    login = api_client.post(
        "/api/v1/auth/login/", {"email": "alice@openvitals.local", "password": "OpenVitals-demo-2026"}
    )
    assert login.status_code == 200, login.content
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['tokens']['access']}")
    today = timezone.localdate()
    period = {"start_date": (today - timedelta(days=29)).isoformat(), "end_date": today.isoformat()}

    alerts = api_client.get("/api/v1/health-metrics/alerts/", {"status": "open"}).json()["results"]
    assert [(a["metric_type"], a["severity"]) for a in alerts] == [("blood_pressure", "critical")]
    # The crisis reading and the repeat that confirmed it; alice's routine reading of the day joins the episode
    # when it was out of range too and came just before (it depends on the time of day the demo is seeded).
    systolic = set(Reading.objects.filter(pk__in=alerts[0]["readings"]).values_list("value", flat=True))
    assert {184, 181} <= systolic
    scores = api_client.get("/api/v1/health-metrics/health-score/").json()
    assert scores["count"] >= 85
    assert {part["name"] for part in scores["results"][0]["parts"]} >= {"vitals", "activity", "sleep"}

    lines = csv_text(api_client.get(URL, {"format": "csv", **period})).splitlines()
    assert lines[0] == HEADER
    types = {line.split(",")[4] for line in lines[1:]}
    assert {"heart_rate", "blood_pressure", "body_weight", "steps", "sleep_duration"} <= types
    assert len(lines) > 30 * 24

    pdf = api_client.get(URL, {"format": "pdf", **period})
    assert pdf.status_code == 200
    assert len(PdfReader(io.BytesIO(pdf.content)).pages) == 2 + len(types) + 1

    fhir = api_client.get(URL, {"format": "fhir", **period})
    assert fhir.status_code == 200
    bundle = Bundle.model_validate_json(fhir.content)
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert kinds.count("Observation") == len(lines) - 1  # every reading
    assert kinds.count("Patient") == 1
    assert kinds.count("Appointment") >= 1  # the demo's past visits of the month (an export of every type)
