"""A real Celery worker on Redis takes a batch off the `ingest` queue and processes it end to end."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from config.celery import app
from conftest import bearer
from health_metrics.models import Reading
from iot_devices.models import IngestBatch


def purge(*queues):
    with app.connection_for_write() as connection:
        for queue in queues:
            connection.default_channel.queue_purge(queue)  # acks_late leaves messages from aborted runs


def upload_and_process(owner, batch_id: str, readings: list[dict]) -> tuple[dict, APIClient, dict, IngestBatch]:
    """Register a device over the API, upload a batch with its key, and let a real worker process it."""
    purge("ingest", "default")
    registered = bearer(APIClient(), owner).post("/api/v1/iot-devices/", {"name": "Watch"}, format="json")
    assert registered.status_code == 201
    device = APIClient()
    device.credentials(HTTP_X_DEVICE_KEY=registered.json()["api_key"])
    try:
        body = {"batch_id": batch_id, "readings": readings}
        response = device.post("/api/v1/iot-devices/ingest/", body, format="json")
        assert response.status_code == 202
        batch_pk = response.json()["id"]
        assert IngestBatch.objects.get(pk=batch_pk).status == "received"  # enqueued, not run in-process

        with start_worker(app, pool="solo", perform_ping_check=False, queues=["ingest"]):
            deadline = time.monotonic() + 30
            while IngestBatch.objects.get(pk=batch_pk).status in ("received", "processing"):
                assert time.monotonic() < deadline, "the worker did not finish the batch within 30 s"
                time.sleep(0.1)
    finally:
        purge("ingest", "default")  # the rollups task went to `default`, which no worker here consumes
    return registered.json(), device, response.json(), IngestBatch.objects.get(pk=batch_pk)


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_processes_a_batch_from_the_ingest_queue(not_eager, logging_restored):
    assert settings.CELERY_BROKER_URL.startswith("redis://127.0.0.1:")
    owner = UserFactory()
    readings = [
        {"metric_type": "heart_rate", "value": 70 + n, "recorded_at": f"2025-06-01T08:0{n}:00Z"} for n in range(3)
    ] + [{"metric_type": "heart_rate", "value": 900, "recorded_at": "2025-06-01T09:00:00Z"}]

    registered, device, response, batch = upload_and_process(owner, "w1", readings)

    assert (batch.status, batch.attempts, batch.accepted, batch.duplicates, batch.rejected) == ("partial", 1, 3, 0, 1)
    assert [(e["index"], e["attr"], e["code"]) for e in batch.errors] == [(3, "value", "out_of_range")]
    stored = Reading.objects.filter(user=owner).order_by("recorded_at")
    assert [r.value for r in stored] == [70, 71, 72]
    assert {(r.data_source.kind, str(r.data_source.device.pk)) for r in stored} == {("device", registered["id"])}
    body = device.get(response["url"]).json()
    assert (body["status"], body["accepted"]) == ("partial", 3)


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_rejects_readings_with_a_null_character_and_stores_the_rest(not_eager, logging_restored):
    """A NUL in notes or external_id once crashed the whole batch and left it `processing` for ever."""
    owner = UserFactory()
    readings = [
        {"metric_type": "heart_rate", "value": 70, "recorded_at": "2025-06-01T08:00:00Z"},
        {"metric_type": "heart_rate", "value": 71, "recorded_at": "2025-06-01T08:01:00Z", "notes": "a\u0000b"},
        {"metric_type": "heart_rate", "value": 72, "recorded_at": "2025-06-01T08:02:00Z", "external_id": "\u0000"},
        {"metric_type": "heart_rate", "value": 73, "recorded_at": "2025-06-01T08:03:00Z", "notes": "fine"},
    ]

    _, _, _, batch = upload_and_process(owner, "nul", readings)

    assert (batch.status, batch.attempts, batch.accepted, batch.duplicates, batch.rejected) == ("partial", 1, 2, 0, 2)
    assert [(e["index"], e["attr"], e["code"]) for e in batch.errors] == [
        (1, "notes", "null_character"),
        (2, "external_id", "null_character"),
    ]
    assert batch.failure_reason == ""
    stored = Reading.objects.filter(user=owner).order_by("recorded_at")
    assert [(r.value, r.notes, r.external_id) for r in stored] == [(70, "", ""), (73, "fine", "")]
