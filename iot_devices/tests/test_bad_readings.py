"""Bad text and impossible times in a device batch: the envelope's are a 400, a reading's are that item's error.

Issue #9's rule holds for issue #10's classes of bad input: U+0000, a lone UTF-16 surrogate and a datetime
PostgreSQL or Python cannot hold, inside a reading, reject that reading with its reason (the batch `partial`)
and the rest are stored; in `batch_id` or `sent_at`, or nested too deep, they refuse the whole request and
nothing is stored. The batch runs through the real task (eager, on commit) and the worker's decoding of the
stored payload.
"""

import json

import pytest
from rest_framework.test import APIClient

from health_metrics.models import Reading
from health_metrics.tests.factories import set_timezone
from iot_devices.models import Device, IngestBatch
from iot_devices.services import canonical_payload, text_is_storable

pytestmark = pytest.mark.django_db

INGEST = "/api/v1/iot-devices/ingest/"
NUL = "Must not contain the null character (U+0000)."
SURROGATE = "Must not contain a lone UTF-16 surrogate (U+D800 to U+DFFF)."
OFFSET = "The UTC offset must be within ±15:59."
RANGE = "Must be from 1900-01-01 to 9998-12-31 (in UTC)."


def heart_rate(value, at, **fields):
    return {"metric_type": "heart_rate", "value": value, "recorded_at": at, **fields}


def minute(n):
    return f"2025-06-01T08:{n:02d}:00Z"


@pytest.fixture
def as_device(as_user):
    body = as_user.post("/api/v1/iot-devices/", {"name": "Watch"}, format="json").json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {body['api_key']}")
    return client


def upload(client, body: dict, capture):  # noqa: ANN001
    """The body as JSON text, escapes and all (`\\u0000`, `\\ud800`), the way a device sends it."""
    with capture(execute=True):
        return client.post(INGEST, data=json.dumps(body), content_type="application/json")


def test_bad_text_and_impossible_times_reject_their_readings_and_the_rest_are_stored(
    as_device, user, django_capture_on_commit_callbacks
):
    set_timezone(user, "Asia/Tokyo")
    readings = [
        heart_rate(70, minute(0)),
        heart_rate(71, minute(1), notes="cuff\ud800loose"),
        heart_rate(72, minute(2), external_id="\udfffext"),
        heart_rate(73, minute(3), notes="nul\x00here"),
        heart_rate(74, "9999-12-31T23:59:59-12:00"),  # the year 10000 in UTC
        heart_rate(75, "2025-06-01T08:05:00+18:00"),  # an offset PostgreSQL does not take
        heart_rate(76, minute(6), ended_at="2025-06-01T08:07:00-16:00"),
        heart_rate(77, "9999-12-31T23:59:59Z"),  # the year 10000 in the wearer's zone (Tokyo)
        heart_rate(78, minute(8), notes="fine, with a key that is not: ignored", **{"\ud800": 1}),
    ]

    response = upload(as_device, {"batch_id": "b1", "readings": readings}, django_capture_on_commit_callbacks)

    assert response.status_code == 202
    body = as_device.get(response.json()["url"]).json()
    assert (body["status"], body["accepted"], body["rejected"], body["failure_reason"]) == ("partial", 2, 7, "")
    assert body["errors"] == [
        {"index": 1, "attr": "notes", "code": "surrogate_character", "detail": SURROGATE},
        {"index": 2, "attr": "external_id", "code": "surrogate_character", "detail": SURROGATE},
        {"index": 3, "attr": "notes", "code": "null_character", "detail": NUL},
        {"index": 4, "attr": "recorded_at", "code": "out_of_range", "detail": RANGE},
        {"index": 5, "attr": "recorded_at", "code": "invalid_offset", "detail": OFFSET},
        {"index": 6, "attr": "ended_at", "code": "invalid_offset", "detail": OFFSET},
        {"index": 7, "attr": "recorded_at", "code": "out_of_range", "detail": RANGE},
    ]
    assert sorted(Reading.objects.filter(user=user).values_list("value", flat=True)) == [70, 78]


def test_a_payload_with_a_lone_surrogate_is_stored_and_read_back_as_sent(as_device, user):
    """The canonical payload keeps a surrogate as its own bytes, so the worker sees what the device sent."""
    readings = [heart_rate(70, minute(0), notes="a\ud800b")]

    response = as_device.post(
        INGEST, data=json.dumps({"batch_id": "b1", "readings": readings}), content_type="application/json"
    )

    assert response.status_code == 202
    batch = IngestBatch.objects.get()
    assert bytes(batch.payload) == canonical_payload(readings)
    assert batch.readings == readings
    assert not text_is_storable(bytes(batch.payload))
    assert text_is_storable(canonical_payload([heart_rate(70, minute(0), notes="ünïcödé 한국어 \U0001f600")]))
    assert not text_is_storable(canonical_payload([heart_rate(70, minute(0), notes="a\x00b")]))


@pytest.mark.parametrize(
    ("envelope", "attr", "code"),
    [
        ({"batch_id": "b\x00"}, "batch_id", "null_character"),
        ({"batch_id": "b\ud800"}, "batch_id", "surrogate_character"),
        ({"batch_id": "b1", "sent_at": "9999-12-31T23:59:59-12:00"}, "sent_at", "out_of_range"),
        ({"batch_id": "b1", "sent_at": "2025-06-01T08:00:00+18:00"}, "sent_at", "invalid_offset"),
    ],
)
def test_bad_input_in_the_envelope_refuses_the_batch_and_stores_nothing(
    as_device, envelope, attr, code, django_capture_on_commit_callbacks
):
    response = upload(
        as_device, {**envelope, "readings": [heart_rate(70, minute(0))]}, django_capture_on_commit_callbacks
    )

    assert response.status_code == 400
    assert [(e["attr"], e["code"]) for e in response.json()["errors"]] == [(attr, code)]
    assert not IngestBatch.objects.exists()
    assert not Reading.objects.exists()


def test_a_batch_nested_too_deep_is_refused_whole(as_device, django_capture_on_commit_callbacks):
    deep = "[" * 1000 + "]" * 1000
    text = '{"batch_id": "b1", "readings": [{"metric_type": "heart_rate", "notes": ' + deep + "}]}"

    with django_capture_on_commit_callbacks(execute=True):
        response = as_device.post(INGEST, data=text, content_type="application/json")

    assert response.status_code == 400
    assert [(e["attr"], e["code"]) for e in response.json()["errors"]] == [("readings", "too_deep")]
    assert not IngestBatch.objects.exists()
    assert Device.objects.get().last_seen_at is None
