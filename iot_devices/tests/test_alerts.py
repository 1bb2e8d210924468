"""Device alert episodes: opened once when a condition starts, resolved when it clears."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import CareTeamGrantFactory
from conftest import bearer
from iot_devices.models import DeviceAlert
from iot_devices.services import check_device_health
from iot_devices.tasks import check_device_health_task
from iot_devices.tests.factories import DeviceFactory, IngestBatchFactory

pytestmark = pytest.mark.django_db


def open_kinds(device):
    return sorted(DeviceAlert.objects.filter(device=device, resolved_at__isnull=True).values_list("kind", flat=True))


def test_a_silent_device_raises_one_offline_alert_per_episode(user):
    device = DeviceFactory(owner=user, last_seen_at=timezone.now() - timedelta(minutes=61))
    check_device_health()
    check_device_health()  # a re-run opens nothing new
    assert open_kinds(device) == ["offline"]
    assert DeviceAlert.objects.count() == 1
    device.last_seen_at = timezone.now()
    device.save()
    check_device_health()
    assert open_kinds(device) == []
    assert DeviceAlert.objects.get().resolved_at is not None
    device.last_seen_at = timezone.now() - timedelta(hours=2)
    device.save()
    check_device_health()
    assert DeviceAlert.objects.filter(kind="offline").count() == 2  # a new episode


def test_the_silence_threshold_is_per_device(user):
    patient_device = DeviceFactory(
        owner=user, last_seen_at=timezone.now() - timedelta(minutes=20), configuration={"offline_after_minutes": 10}
    )
    relaxed = DeviceFactory(owner=user, last_seen_at=timezone.now() - timedelta(minutes=20))
    check_device_health()
    assert open_kinds(patient_device) == ["offline"]
    assert open_kinds(relaxed) == []


@pytest.mark.parametrize(("battery", "alerted"), [(14, True), (15, False), (None, False)])
def test_battery_under_15_percent_raises_an_alert(user, battery, alerted):
    device = DeviceFactory(owner=user, battery_level=battery, last_seen_at=timezone.now())
    check_device_health_task()
    assert open_kinds(device) == (["low_battery"] if alerted else [])


def test_a_run_of_rejected_batches_raises_an_alert_until_one_is_accepted(user):
    device = DeviceFactory(owner=user, last_seen_at=timezone.now())
    now = timezone.now()
    for minutes in (3, 2):
        IngestBatchFactory(device=device, accepted=0, rejected=5, finished_at=now - timedelta(minutes=minutes))
    check_device_health()
    assert open_kinds(device) == []  # two is not yet a run
    IngestBatchFactory(device=device, accepted=0, rejected=5, finished_at=now - timedelta(minutes=1))
    check_device_health()
    assert open_kinds(device) == ["rejected_readings"]
    IngestBatchFactory(device=device, accepted=10, rejected=0, finished_at=now)
    check_device_health()
    assert open_kinds(device) == []


def test_owners_list_and_acknowledge_their_device_alerts(api_client, user, other_user):
    mine = DeviceAlert.objects.create(device=DeviceFactory(owner=user), kind="low_battery", message="Battery at 9%.")
    DeviceAlert.objects.create(device=DeviceFactory(owner=other_user), kind="offline", message="No contact.")
    client = bearer(api_client, user)
    body = client.get("/api/v1/iot-devices/alerts/").json()
    assert [a["id"] for a in body["results"]] == [str(mine.pk)]
    response = client.post(f"/api/v1/iot-devices/alerts/{mine.pk}/acknowledge/")
    assert response.status_code == 200
    mine.refresh_from_db()
    assert (mine.acknowledged_by, mine.acknowledged_at is not None) == (user, True)


def test_a_consented_clinician_sees_the_patients_device_alerts(api_client, user, clinician):
    alert = DeviceAlert.objects.create(device=DeviceFactory(owner=user), kind="offline", message="No contact.")
    assert bearer(api_client, clinician).get("/api/v1/iot-devices/alerts/").json()["count"] == 0
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    body = bearer(api_client, clinician).get("/api/v1/iot-devices/alerts/?open=true").json()
    assert [a["id"] for a in body["results"]] == [str(alert.pk)]


def test_alerts_filter_by_device_and_anothers_device_answers_as_a_made_up_one(api_client, user, other_user):
    mine = DeviceAlert.objects.create(device=DeviceFactory(owner=user), kind="low_battery", message="Battery at 9%.")
    theirs = DeviceAlert.objects.create(device=DeviceFactory(owner=other_user), kind="offline", message="No contact.")
    client = bearer(api_client, user)

    own = client.get("/api/v1/iot-devices/alerts/", {"device": str(mine.device_id)})
    other = client.get("/api/v1/iot-devices/alerts/", {"device": str(theirs.device_id)})
    made_up = client.get("/api/v1/iot-devices/alerts/", {"device": "8d0c1bb4-3f5e-4a56-9a57-3c1a2b0c9d11"})
    malformed = client.get("/api/v1/iot-devices/alerts/", {"device": "not-an-id"})

    assert [a["id"] for a in own.json()["results"]] == [str(mine.pk)]
    assert (other.status_code, other.json()["count"]) == (made_up.status_code, made_up.json()["count"]) == (200, 0)
    assert malformed.status_code == 400
    assert malformed.json()["errors"][0]["attr"] == "device"
