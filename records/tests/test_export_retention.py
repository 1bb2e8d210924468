"""Export files are private where they are written and deleted after EXPORT_RETENTION_HOURS by a beat job."""

import stat
import urllib.request
from datetime import date, timedelta

import boto3
import pytest
from django.utils import timezone

from records.models import ExportJob
from records.tasks import expire_export_files_task, run_export_job_task
from records.tests.test_exports import s3_endpoint, use_s3  # noqa: F401 - the moto server fixture

pytestmark = pytest.mark.django_db

JOBS = "/api/v1/health-metrics/exports/"


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def made_export(user, *, hours_ago: float = 0) -> ExportJob:
    """An export job made by the worker, its file written `hours_ago`."""
    job = ExportJob.objects.create(
        requested_by=user, user=user, format="csv", start_date=date(2025, 3, 1), end_date=date(2025, 3, 31)
    )
    run_export_job_task(str(job.pk))
    ExportJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(hours=hours_ago))
    job.refresh_from_db()
    assert job.status == "done"
    assert job.file
    return job


def test_an_export_older_than_the_retention_is_deleted_and_its_download_is_gone(as_user, user, media, settings):
    settings.EXPORT_RETENTION_HOURS = 24
    old, recent = made_export(user, hours_ago=25), made_export(user, hours_ago=23)
    old_path, recent_path = media / old.file.name, media / recent.file.name
    assert old_path.exists()

    assert expire_export_files_task() == {"expired": 1, "failed": 0}
    assert expire_export_files_task() == {"expired": 0, "failed": 0}  # a second run finds nothing

    assert not old_path.exists()
    assert recent_path.exists()
    body = as_user.get(f"{JOBS}{old.pk}/").json()
    assert (body["status"], body["download_url"], body["expires_at"]) == ("expired", None, None)
    response = as_user.get(f"{JOBS}{old.pk}/download/")
    assert response.status_code == 410
    assert response.json()["errors"][0]["code"] == "expired"
    kept = as_user.get(f"{JOBS}{recent.pk}/").json()
    assert kept["status"] == "done"
    assert kept["expires_at"] == (recent.finished_at + timedelta(hours=24)).isoformat().replace("+00:00", "Z")
    assert as_user.get(f"{JOBS}{recent.pk}/download/").status_code == 200


def test_one_export_whose_file_cannot_be_deleted_does_not_keep_the_others(user, media, caplog):
    broken, fine = made_export(user, hours_ago=100), made_export(user, hours_ago=99)
    ExportJob.objects.filter(pk=broken.pk).update(file="../../outside/media.csv")  # a row no worker wrote

    assert expire_export_files_task() == {"expired": 1, "failed": 1}

    assert not (media / fine.file.name).exists()
    assert ExportJob.objects.get(pk=fine.pk).status == "expired"
    assert ExportJob.objects.get(pk=broken.pk).status == "done"  # tried again next hour
    assert any(str(broken.pk) in r.getMessage() for r in caplog.records if "sweep_item_failed" in r.getMessage())


def test_a_local_export_file_is_readable_by_its_owner_only_and_has_no_url(api_client, user, media):
    job = made_export(user)

    mode = stat.S_IMODE((media / job.file.name).stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE((media / job.file.name).parent.stat().st_mode) == 0o700
    assert api_client.get(f"/media/{job.file.name}").status_code == 404
    assert api_client.get(f"/{job.file.name}").status_code == 404


@pytest.fixture
def s3_bucket(settings, s3_endpoint):  # noqa: F811
    bucket = f"retention-{timezone.now():%H%M%S%f}"
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


def test_on_s3_an_export_is_private_uncacheable_and_deleted_after_the_retention(as_user, user, s3_bucket):
    client, bucket = s3_bucket
    job = made_export(user, hours_ago=80)

    grants = client.get_object_acl(Bucket=bucket, Key=job.file.name)["Grants"]
    assert [grant["Grantee"]["Type"] for grant in grants] == ["CanonicalUser"]  # the owner alone: no public grant
    download_url = as_user.get(f"{JOBS}{job.pk}/").json()["download_url"]
    with urllib.request.urlopen(download_url, timeout=10) as response:  # noqa: S310 - our moto server
        assert response.headers["Cache-Control"] == "no-store"

    assert expire_export_files_task() == {"expired": 1, "failed": 0}

    assert client.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert ExportJob.objects.get(pk=job.pk).status == "expired"
