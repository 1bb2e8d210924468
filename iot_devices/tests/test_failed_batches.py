"""A batch that keeps crashing: retried up to INGEST_MAX_ATTEMPTS, then failed with its reason and a device alert.

The crash is genuine: the batch's stored payload is made invalid JSON in the database, so every
attempt raises where processing decodes it. Nothing of ours is mocked.
"""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from health_metrics.models import Reading
from iot_devices.models import Device, DeviceAlert, IngestBatch
from iot_devices.services import requeue_stranded_batches
from iot_devices.tasks import process_batch_task

pytestmark = pytest.mark.django_db

INGEST = "/api/v1/iot-devices/ingest/"
CRASH = "JSONDecodeError: Expecting value: line 1 column 1 (char 0)"
KILLED = "The worker stopped in the middle of the batch (killed, or over its time limit)."
LONG_AGO = timedelta(hours=1)


@pytest.fixture
def device(as_user):
    body = as_user.post("/api/v1/iot-devices/", {"name": "Cuff"}, format="json").json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {body['api_key']}")
    return Device.objects.get(pk=body["id"]), client


def upload(device, batch_id="b1"):
    """A stored, never processed batch of one good reading (on-commit callbacks are not run here)."""
    _, client = device
    reading = {"metric_type": "heart_rate", "value": 70, "recorded_at": "2025-06-01T08:00:00Z"}
    response = client.post(INGEST, {"batch_id": batch_id, "readings": [reading]}, format="json")
    assert response.status_code == 202
    return response.json()["id"]


def break_payload(batch_pk):
    IngestBatch.objects.filter(pk=batch_pk).update(payload=b"not json", received_at=timezone.now() - LONG_AGO)


def state(batch_pk):
    batch = IngestBatch.objects.get(pk=batch_pk)
    return batch.status, batch.attempts, batch.failure_reason


def test_a_batch_that_crashes_every_time_fails_after_exactly_the_cap(device, settings, caplog):
    assert settings.INGEST_MAX_ATTEMPTS == 5
    batch_pk = upload(device)
    break_payload(batch_pk)

    assert process_batch_task(batch_pk) == "received"  # the delivery on upload: crashed, put back
    assert state(batch_pk) == ("received", 1, CRASH)
    for attempt in (2, 3, 4):
        assert requeue_stranded_batches() == 1  # the beat job; eager here, so the task runs at once
        assert state(batch_pk) == ("received", attempt, CRASH)
    assert not DeviceAlert.objects.exists()

    assert requeue_stranded_batches() == 1
    batch = IngestBatch.objects.get(pk=batch_pk)
    assert (batch.status, batch.attempts, batch.failure_reason) == ("failed", 5, CRASH)
    assert (batch.accepted, batch.duplicates, batch.rejected, batch.errors) == (0, 0, 0, [])
    assert batch.finished_at is not None
    alert = DeviceAlert.objects.get()
    assert (alert.device_id, alert.kind, alert.batch_id, alert.resolved_at) == (
        device[0].pk,
        "batch_failed",
        batch.pk,
        None,
    )
    assert alert.message == f"Batch b1 failed after 5 attempts: {CRASH}"

    assert requeue_stranded_batches() == 0  # failed is final: the sweeper leaves it
    assert process_batch_task(batch_pk) is None  # a stray redelivery claims nothing
    assert state(batch_pk) == ("failed", 5, CRASH)
    assert DeviceAlert.objects.count() == 1
    assert Reading.objects.count() == 0
    crashes = [r for r in caplog.records if r.levelno == logging.ERROR and batch_pk in r.getMessage()]
    assert [r.getMessage() for r in crashes] == [f"Ingest batch {batch_pk} crashed"] * 5
    assert all(r.exc_info is not None for r in crashes)


def test_the_cap_is_the_ingest_max_attempts_setting(device, settings):
    settings.INGEST_MAX_ATTEMPTS = 2
    batch_pk = upload(device)
    break_payload(batch_pk)

    assert process_batch_task(batch_pk) == "received"
    assert process_batch_task(batch_pk) == "failed"

    assert state(batch_pk) == ("failed", 2, CRASH)
    assert DeviceAlert.objects.filter(kind="batch_failed").count() == 1


def test_the_owner_reads_the_reason_on_the_batch_and_the_alert_in_device_alerts(device, as_user, settings):
    settings.INGEST_MAX_ATTEMPTS = 1
    batch_pk = upload(device)
    break_payload(batch_pk)
    process_batch_task(batch_pk)

    batch = as_user.get(f"{INGEST}{batch_pk}/").json()
    assert (batch["status"], batch["attempts"], batch["failure_reason"]) == ("failed", 1, CRASH)
    assert device[1].get(f"{INGEST}{batch_pk}/").json()["failure_reason"] == CRASH  # and the device itself
    alerts = as_user.get("/api/v1/iot-devices/alerts/?open=true").json()["results"]
    assert [(a["kind"], a["device"], a["batch"], a["message"]) for a in alerts] == [
        ("batch_failed", str(device[0].pk), batch_pk, f"Batch b1 failed after 1 attempts: {CRASH}")
    ]


def test_each_failed_batch_of_a_device_gets_its_own_alert(device, settings):
    settings.INGEST_MAX_ATTEMPTS = 1
    first, second = upload(device, "b1"), upload(device, "b2")
    for batch_pk in (first, second):
        break_payload(batch_pk)
        assert process_batch_task(batch_pk) == "failed"

    alerts = DeviceAlert.objects.filter(device=device[0], resolved_at__isnull=True)
    assert sorted(str(pk) for pk in alerts.values_list("batch_id", flat=True)) == sorted([first, second])
    assert set(alerts.values_list("kind", flat=True)) == {"batch_failed"}


def test_a_worker_killed_on_the_last_attempt_leaves_the_batch_failed_at_the_next_claim(device):
    batch_pk = upload(device)
    # What SIGKILL leaves: claimed (attempt 5 counted), processing, and nobody to say why; now stale.
    long_ago = timezone.now() - LONG_AGO
    IngestBatch.objects.filter(pk=batch_pk).update(
        status="processing", attempts=5, started_at=long_ago, received_at=long_ago
    )

    assert requeue_stranded_batches() == 1  # enqueued; the claim refuses it and fails it

    assert state(batch_pk) == ("failed", 5, KILLED)
    assert DeviceAlert.objects.get().message == f"Batch b1 failed after 5 attempts: {KILLED}"
    assert Reading.objects.count() == 0
    assert requeue_stranded_batches() == 0


def test_a_worker_killed_before_the_last_attempt_leaves_the_batch_for_one_more(device):
    batch_pk = upload(device)
    long_ago = timezone.now() - LONG_AGO
    IngestBatch.objects.filter(pk=batch_pk).update(
        status="processing", attempts=4, started_at=long_ago, received_at=long_ago
    )

    assert requeue_stranded_batches() == 1

    assert state(batch_pk) == ("done", 5, "")
    assert list(Reading.objects.values_list("value", flat=True)) == [70]
    assert not DeviceAlert.objects.exists()


def test_a_batch_that_crashed_once_and_then_succeeds_is_done(device):
    batch_pk = upload(device)
    payload = IngestBatch.objects.get(pk=batch_pk).payload
    break_payload(batch_pk)
    assert process_batch_task(batch_pk) == "received"
    IngestBatch.objects.filter(pk=batch_pk).update(payload=payload)  # whatever broke it is fixed

    assert requeue_stranded_batches() == 1

    batch = IngestBatch.objects.get(pk=batch_pk)
    assert (batch.status, batch.attempts, batch.accepted, batch.failure_reason) == ("done", 2, 1, "")
    assert not DeviceAlert.objects.exists()
