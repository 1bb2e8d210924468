"""Answers carrying health data (the API, FHIR, export files) tell every cache not to keep them."""

from datetime import date

import pytest

from health_metrics.tests.factories import ReadingFactory
from records.models import ExportJob
from records.tasks import run_export_job_task

pytestmark = pytest.mark.django_db


def assert_no_store(response) -> None:  # noqa: ANN001
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= directives, response["Cache-Control"]
    assert "max-age=0" in directives


def test_api_and_fhir_answers_are_not_stored_by_any_cache(as_user, user):
    reading = ReadingFactory(user=user)

    for path in (
        "/api/v1/health-metrics/",
        f"/api/v1/health-metrics/{reading.pk}/",
        "/api/v1/auth/current-user/",
        f"/fhir/r4/Observation/{reading.pk}",
        f"/fhir/r4/Patient/{user.pk}",
        "/fhir/r4/metadata",
        "/api/v1/health-metrics/00000000-0000-0000-0000-000000000000/",  # errors too
    ):
        response = as_user.get(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        assert_no_store(response)


def test_export_files_are_not_stored_by_any_cache(as_user, user, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    ReadingFactory(user=user)
    streamed = as_user.get(
        "/api/v1/health-metrics/export/", {"format": "csv", "start_date": "2025-03-01", "end_date": "2025-03-31"}
    )
    job = ExportJob.objects.create(
        requested_by=user, user=user, format="pdf", start_date=date(2025, 3, 1), end_date=date(2025, 3, 31)
    )
    run_export_job_task(str(job.pk))

    downloaded = as_user.get(f"/api/v1/health-metrics/exports/{job.pk}/download/")

    assert (streamed.status_code, downloaded.status_code) == (200, 200)
    assert_no_store(streamed)
    assert_no_store(downloaded)


def test_pages_without_health_data_keep_their_own_caching(api_client):
    response = api_client.get("/health/")

    assert "no-store" not in response.get("Cache-Control", "")
