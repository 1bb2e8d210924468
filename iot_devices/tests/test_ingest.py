"""Batch ingest: the envelope, idempotent replays, per-item results, duplicates, units, the sweeper, heartbeats."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import bearer
from health_metrics.models import Reading
from iot_devices.models import Device, IngestBatch
from iot_devices.services import process_batch, requeue_stranded_batches
from iot_devices.tests.factories import DeviceFactory, IngestBatchFactory

pytestmark = pytest.mark.django_db

DEVICES = "/api/v1/iot-devices/"
INGEST = "/api/v1/iot-devices/ingest/"
HEARTBEAT = "/api/v1/iot-devices/heartbeat/"
STATS = "/api/v1/iot-devices/stats/"


def heart_rate(value=72, at="2025-06-01T08:00:00Z", **fields):
    return {"metric_type": "heart_rate", "value": value, "recorded_at": at, **fields}


def minute(n):
    return f"2025-06-01T08:{n:02d}:00Z"


@pytest.fixture
def registered(as_user):
    body = as_user.post(DEVICES, {"name": "Watch", "device_type": "smartwatch"}, format="json").json()
    return Device.objects.get(pk=body["id"]), body["api_key"]


@pytest.fixture
def device(registered):
    return registered[0]


@pytest.fixture
def as_device(registered):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {registered[1]}")
    return client


def post(client, body):
    return client.post(INGEST, body, format="json")


@pytest.fixture
def send(as_device, django_capture_on_commit_callbacks):
    """POST a batch and have it processed (eagerly, on commit)."""

    def send(readings, batch_id="b1", **envelope):
        with django_capture_on_commit_callbacks(execute=True):
            return post(as_device, {"batch_id": batch_id, "readings": readings, **envelope})

    return send


def batch_of(response):
    return IngestBatch.objects.get(pk=response.json()["id"])


def first_error(response):
    error = response.json()["errors"][0]
    return error["attr"], error["code"]


# --- the envelope ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"readings": [heart_rate()]}, "batch_id"),
        ({"batch_id": "", "readings": [heart_rate()]}, "batch_id"),
        ({"batch_id": "   ", "readings": [heart_rate()]}, "batch_id"),
        ({"batch_id": True, "readings": [heart_rate()]}, "batch_id"),
        ({"batch_id": "x" * 101, "readings": [heart_rate()]}, "batch_id"),
        ({"batch_id": "b\x001", "readings": [heart_rate()]}, "batch_id"),
        ({"batch_id": "b1"}, "readings"),
        ({"batch_id": "b1", "readings": heart_rate()}, "readings"),
        ({"batch_id": "b1", "readings": "many"}, "readings"),
        ({"batch_id": "b1", "readings": []}, "readings"),
        ({"batch_id": "b1", "readings": [heart_rate()], "sent_at": "yesterday"}, "sent_at"),
        ({"batch_id": "b1", "readings": [heart_rate()], "sent_at": "2025-06-01T08:00:00"}, "sent_at"),
        ({"batch_id": "b1", "readings": [heart_rate()], "sent_at": 1748764800}, "sent_at"),
        ([heart_rate()], "non_field_errors"),
    ],
)
def test_a_bad_envelope_is_400_naming_the_field(as_device, body, attr):
    response = post(as_device, body)

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == attr
    assert IngestBatch.objects.count() == 0


def test_an_impossible_sent_at_is_400(as_device):
    response = post(as_device, {"batch_id": "b1", "readings": [heart_rate()], "sent_at": "2025-13-45T08:00:00+00:00"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "sent_at"


def test_more_than_10000_readings_is_413(as_device):
    readings = [heart_rate(60 + n % 40, at=f"2025-06-01T08:00:{n % 60:02d}Z") for n in range(10_001)]

    response = post(as_device, {"batch_id": "big", "readings": readings})

    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "too_many_readings"
    assert IngestBatch.objects.count() == 0


def test_a_full_batch_of_10000_readings_of_over_a_megabyte_is_accepted(as_device, device):
    start = timezone.now() - timedelta(days=30)
    readings = [
        heart_rate(60 + n % 40, at=(start + timedelta(seconds=n)).isoformat(), unit="bpm", notes="resting " * 4)
        for n in range(10_000)
    ]

    response = post(as_device, {"batch_id": "full", "readings": readings})

    assert response.status_code == 202, response.content[:300]
    assert IngestBatch.objects.get(device=device, batch_id="full").reading_count == 10_000


def test_a_sent_at_with_an_offset_is_stored(as_device):
    response = post(as_device, {"batch_id": "b1", "readings": [heart_rate()], "sent_at": "2025-06-01T10:00:00+02:00"})

    assert response.status_code == 202
    assert batch_of(response).sent_at.isoformat() == "2025-06-01T08:00:00+00:00"


# --- accepted, then processed ---------------------------------------------------------------


def test_a_batch_is_answered_202_with_its_url(as_device, device):
    response = post(as_device, {"batch_id": "b1", "readings": [heart_rate()]})

    assert response.status_code == 202
    body = response.json()
    batch = IngestBatch.objects.get(device=device, batch_id="b1")
    assert body == {
        "id": str(batch.pk),
        "status": "received",
        "url": f"http://testserver/api/v1/iot-devices/ingest/{batch.pk}/",
    }
    detail = as_device.get(body["url"])
    assert detail.status_code == 200
    assert (detail.json()["id"], detail.json()["batch_id"], detail.json()["status"]) == (
        str(batch.pk),
        "b1",
        "received",
    )
    assert Reading.objects.count() == 0  # nothing processed until commit


def test_a_processed_batch_is_done_and_its_readings_stored_from_the_device(send, device, user, as_device):
    response = send([heart_rate(70, at=minute(0)), heart_rate(71, at=minute(1)), heart_rate(72, at=minute(2))])

    assert response.status_code == 202
    body = as_device.get(response.json()["url"]).json()
    assert (body["status"], body["reading_count"], body["accepted"], body["duplicates"], body["rejected"]) == (
        "done",
        3,
        3,
        0,
        0,
    )
    assert body["errors"] == []
    assert body["attempts"] == 1
    assert body["started_at"] is not None
    assert body["finished_at"] is not None
    device.refresh_from_db()
    assert device.last_seen_at is not None
    stored = Reading.objects.filter(user=user).order_by("recorded_at")
    assert [r.value for r in stored] == [70, 71, 72]
    assert {(r.data_source.kind, r.data_source_id, r.metric_type.code) for r in stored} == {
        ("device", device.data_source_id, "heart_rate")
    }


def test_the_owner_reads_the_batch_with_a_token_and_others_cannot(send, as_user, other_user, registered):
    url = send([heart_rate()]).json()["url"]

    assert as_user.get(url).json()["status"] == "done"
    assert bearer(APIClient(), other_user).get(url).status_code == 404
    other = bearer(APIClient(), other_user).post(DEVICES, {"name": "Theirs"}, format="json").json()
    assert APIClient().get(url, HTTP_X_DEVICE_KEY=other["api_key"]).status_code == 404


def test_the_device_lists_its_batches_for_the_owner(send, as_user, device):
    send([heart_rate(at=minute(0))], batch_id="b1")
    send([heart_rate(at=minute(1))], batch_id="b2")

    response = as_user.get(f"{DEVICES}{device.pk}/batches/")

    assert response.status_code == 200
    assert sorted(b["batch_id"] for b in response.json()["results"]) == ["b1", "b2"]


# --- replays --------------------------------------------------------------------------------


def test_a_replayed_batch_answers_the_stored_batch_and_stores_nothing(send, user):
    readings = [heart_rate(70, at=minute(0)), heart_rate(71, at=minute(1))]
    first = send(readings)

    replay = send(readings)

    assert replay.status_code == 200
    body = replay.json()
    assert (body["id"], body["status"], body["accepted"]) == (first.json()["id"], "done", 2)
    assert IngestBatch.objects.count() == 1
    assert Reading.objects.filter(user=user).count() == 2


def test_a_replay_with_keys_in_another_order_is_the_same_batch(send):
    first = send([{"metric_type": "heart_rate", "value": 70, "recorded_at": minute(0)}])

    replay = send([{"recorded_at": minute(0), "value": 70, "metric_type": "heart_rate"}])

    assert replay.status_code == 200
    assert replay.json()["id"] == first.json()["id"]


def test_a_batch_id_reused_with_other_readings_is_422(send, user):
    send([heart_rate(70, at=minute(0))])

    response = send([heart_rate(99, at=minute(0))])

    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "batch_id_reused"
    assert IngestBatch.objects.count() == 1
    assert list(Reading.objects.filter(user=user).values_list("value", flat=True)) == [70]


def test_another_device_may_use_the_same_batch_id(send, as_user, user):
    send([heart_rate(70, at=minute(0))])
    other_key = as_user.post(DEVICES, {"name": "Band"}, format="json").json()["api_key"]

    response = APIClient().post(
        INGEST,
        {"batch_id": "b1", "readings": [heart_rate(99, at=minute(0))]},
        format="json",
        HTTP_X_DEVICE_KEY=other_key,
    )

    assert response.status_code == 202
    assert IngestBatch.objects.filter(batch_id="b1").count() == 2


# --- per-item results -----------------------------------------------------------------------


def test_bad_items_are_reported_by_index_and_the_valid_ones_stored(send, as_device, user):
    response = send(
        [
            heart_rate(70, at=minute(0)),
            heart_rate(400, at=minute(1)),
            {"metric_type": "no_such_type", "value": 1, "recorded_at": minute(2)},
            heart_rate(71, at=minute(3)),
            42,
            heart_rate(72, at=minute(5), unit="furlongs"),
            {"metric_type": "heart_rate", "value": 73},
        ]
    )

    body = as_device.get(response.json()["url"]).json()
    assert (body["status"], body["accepted"], body["duplicates"], body["rejected"]) == ("partial", 2, 0, 5)
    assert [(e["index"], e["attr"], e["code"]) for e in body["errors"]] == [
        (1, "value", "out_of_range"),
        (2, "metric_type", "invalid_choice"),
        (4, "non_field_errors", "invalid"),
        (5, "unit", "invalid_choice"),
        (6, "recorded_at", "required"),
    ]
    assert all(set(e) == {"index", "attr", "code", "detail"} and e["detail"] for e in body["errors"])
    assert sorted(Reading.objects.filter(user=user).values_list("value", flat=True)) == [70, 71]


def test_null_characters_reject_their_readings_and_the_rest_are_stored(send, as_device, user):
    response = send(
        [
            heart_rate(70, at=minute(0)),
            heart_rate(71, at=minute(1), notes="cuff\x00loose"),
            heart_rate(72, at=minute(2), external_id="ext\x00-2"),
            heart_rate(73, at=minute(3), notes="ok"),
        ]
    )

    body = as_device.get(response.json()["url"]).json()
    assert (body["status"], body["attempts"], body["accepted"], body["duplicates"], body["rejected"]) == (
        "partial",
        1,
        2,
        0,
        2,
    )
    nul = "Must not contain the null character (U+0000)."
    assert body["errors"] == [
        {"index": 1, "attr": "notes", "code": "null_character", "detail": nul},
        {"index": 2, "attr": "external_id", "code": "null_character", "detail": nul},
    ]
    assert body["failure_reason"] == ""
    stored = Reading.objects.filter(user=user).order_by("recorded_at")
    assert [(r.value, r.notes) for r in stored] == [(70, ""), (73, "ok")]


def test_a_batch_of_only_bad_items_fails(send, as_device, user):
    response = send([heart_rate(400), {"metric_type": "heart_rate"}])

    body = as_device.get(response.json()["url"]).json()
    assert (body["status"], body["accepted"], body["rejected"]) == ("failed", 0, 2)
    assert [e["index"] for e in body["errors"]] == [0, 1]
    assert Reading.objects.filter(user=user).count() == 0


# --- duplicates -----------------------------------------------------------------------------


def test_the_same_reading_twice_in_a_batch_is_stored_once(send, as_device, device):
    response = send([heart_rate(70, at=minute(0)), heart_rate(70, at=minute(0)), heart_rate(71, at=minute(1))])

    body = as_device.get(response.json()["url"]).json()
    assert (body["status"], body["accepted"], body["duplicates"], body["rejected"]) == ("done", 2, 1, 0)
    assert Reading.objects.filter(data_source__device=device).count() == 2


def test_a_later_batch_repeating_readings_counts_them_as_duplicates(send, as_device, device):
    send([heart_rate(70, at=minute(0)), heart_rate(71, at=minute(1))], batch_id="b1")

    response = send(
        [heart_rate(70, at=minute(0)), heart_rate(71, at=minute(1)), heart_rate(72, at=minute(2))], batch_id="b2"
    )

    body = as_device.get(response.json()["url"]).json()
    assert (body["status"], body["accepted"], body["duplicates"]) == ("done", 1, 2)
    assert sorted(Reading.objects.filter(data_source__device=device).values_list("value", flat=True)) == [70, 71, 72]


def test_the_same_moment_of_another_type_is_not_a_duplicate(send, as_device, device):
    response = send(
        [
            heart_rate(70, at=minute(0)),
            {"metric_type": "body_weight", "value": 70, "unit": "kg", "recorded_at": minute(0)},
        ]
    )

    assert as_device.get(response.json()["url"]).json()["accepted"] == 2
    assert Reading.objects.filter(data_source__device=device).count() == 2


# --- units ----------------------------------------------------------------------------------


def test_batch_readings_are_converted_to_the_canonical_unit(send, device):
    send(
        [
            {"metric_type": "body_weight", "value": 150, "unit": "lb", "recorded_at": minute(0)},
            {"metric_type": "body_temperature", "value": 98.6, "unit": "°F", "recorded_at": minute(0)},
        ]
    )

    weight = Reading.objects.get(data_source__device=device, metric_type__code="body_weight")
    temperature = Reading.objects.get(data_source__device=device, metric_type__code="body_temperature")
    assert weight.value == pytest.approx(68.0388555, rel=1e-9)
    assert (weight.original_value, weight.original_unit) == (150, "lb")
    assert temperature.value == pytest.approx(37.0, rel=1e-9)
    assert temperature.original_value == 98.6


# --- processing is idempotent ---------------------------------------------------------------


def test_processing_a_batch_twice_stores_nothing_twice(as_device, device):
    response = post(
        as_device, {"batch_id": "b1", "readings": [heart_rate(70, at=minute(0)), heart_rate(71, at=minute(1))]}
    )
    batch_id = response.json()["id"]

    first = process_batch(batch_id=batch_id)
    second = process_batch(batch_id=batch_id)

    assert (first.status, first.accepted, first.attempts) == ("done", 2, 1)
    assert second is None
    assert Reading.objects.filter(data_source__device=device).count() == 2
    assert IngestBatch.objects.get(pk=batch_id).attempts == 1


def test_the_sweeper_requeues_batches_left_received_or_stuck_processing(as_device, device):
    left = post(as_device, {"batch_id": "left", "readings": [heart_rate(70, at=minute(0))]}).json()["id"]
    stuck = post(as_device, {"batch_id": "stuck", "readings": [heart_rate(71, at=minute(1))]}).json()["id"]
    fresh = post(as_device, {"batch_id": "fresh", "readings": [heart_rate(72, at=minute(2))]}).json()["id"]
    long_ago = timezone.now() - timedelta(hours=1)
    IngestBatch.objects.filter(pk=left).update(received_at=long_ago)
    IngestBatch.objects.filter(pk=stuck).update(
        received_at=long_ago, status="processing", started_at=long_ago, attempts=1
    )

    assert requeue_stranded_batches() == 2

    statuses = dict(IngestBatch.objects.values_list("batch_id", "status"))
    assert statuses == {"left": "done", "stuck": "done", "fresh": "received"}
    assert IngestBatch.objects.get(pk=stuck).attempts == 2
    assert sorted(Reading.objects.filter(data_source__device=device).values_list("value", flat=True)) == [70, 71]
    assert IngestBatch.objects.get(pk=fresh).attempts == 0


def test_the_sweeper_leaves_a_batch_processing_right_now_alone(as_device):
    batch = post(as_device, {"batch_id": "busy", "readings": [heart_rate()]}).json()["id"]
    IngestBatch.objects.filter(pk=batch).update(
        received_at=timezone.now() - timedelta(hours=1), status="processing", started_at=timezone.now()
    )

    assert requeue_stranded_batches() == 0
    assert process_batch(batch_id=batch) is None
    assert IngestBatch.objects.get(pk=batch).status == "processing"


# --- heartbeats -----------------------------------------------------------------------------


def test_a_heartbeat_updates_the_device(as_device, device):
    response = as_device.post(
        HEARTBEAT,
        {"battery_level": 42, "firmware_version": "2.1.0", "signal_strength": -70, "status": "maintenance"},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["battery_level"], body["firmware_version"], body["signal_strength"], body["status"]) == (
        42,
        "2.1.0",
        -70,
        "maintenance",
    )
    device.refresh_from_db()
    assert (device.battery_level, device.firmware_version, device.signal_strength, device.status) == (
        42,
        "2.1.0",
        -70,
        "maintenance",
    )
    assert device.last_seen_at is not None


def test_an_empty_heartbeat_only_marks_the_device_seen(as_device, device):
    assert as_device.post(HEARTBEAT, {}, format="json").status_code == 200

    device.refresh_from_db()
    assert device.last_seen_at is not None
    assert (device.battery_level, device.status) == (None, "active")


@pytest.mark.parametrize(
    ("field", "value"),
    [("battery_level", 150), ("battery_level", -1), ("signal_strength", 5), ("status", "exploded")],
)
def test_an_implausible_heartbeat_is_400(as_device, device, field, value):
    response = as_device.post(HEARTBEAT, {field: value}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == field
    device.refresh_from_db()
    assert (device.battery_level, device.signal_strength, device.status, device.last_seen_at) == (
        None,
        None,
        "active",
        None,
    )


# --- stats ----------------------------------------------------------------------------------


def test_stats_total_the_owners_devices_and_batches(send, as_user, device, other_user):
    send([heart_rate(70, at=minute(0)), heart_rate(71, at=minute(1))], batch_id="done")
    send([heart_rate(72, at=minute(2)), heart_rate(400, at=minute(3))], batch_id="partial")
    send([heart_rate(400, at=minute(4))], batch_id="failed")
    as_user.post(DEVICES, {"name": "Spare"}, format="json")
    spare = Device.objects.get(name="Spare")
    as_user.patch(f"{DEVICES}{spare.pk}/", {"is_active": False}, format="json")

    IngestBatchFactory(device=DeviceFactory(owner=other_user), accepted=50, status="done")

    response = as_user.get(STATS)

    assert response.status_code == 200
    assert response.json() == {
        "devices": 2,
        "active": 1,
        "batches": {"received": 0, "processing": 0, "done": 1, "partial": 1, "failed": 1},
        "readings_accepted": 3,
        "readings_rejected": 2,
    }
