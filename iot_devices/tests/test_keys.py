"""Device keys: shown once, hashed at rest, rotated and revoked at once, and only for devices."""

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import CareTeamGrantFactory
from conftest import bearer
from iot_devices.models import Device, DeviceAPIKey

pytestmark = pytest.mark.django_db

DEVICES = "/api/v1/iot-devices/"
INGEST = "/api/v1/iot-devices/ingest/"
HEARTBEAT = "/api/v1/iot-devices/heartbeat/"


def register(client, name="Wrist watch", **fields):
    response = client.post(DEVICES, {"name": name, "device_type": "smartwatch", **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def heartbeat(key, *, header="authorization"):
    client = APIClient()  # never the person's client: credentials stay apart
    if header == "authorization":
        return client.post(HEARTBEAT, {"battery_level": 50}, format="json", HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client.post(HEARTBEAT, {"battery_level": 50}, format="json", HTTP_X_DEVICE_KEY=key)


def errors_code(response):
    return response.json()["errors"][0]["code"]


# --- shown once, hashed at rest -----------------------------------------------------------


def test_registering_answers_the_key_once(as_user, user):
    body = register(as_user)

    assert len(body["api_key"]) > 30
    assert body["owner"] == str(user.pk)
    detail = as_user.get(f"{DEVICES}{body['id']}/")
    assert detail.status_code == 200
    assert "api_key" not in detail.json()
    listed = as_user.get(DEVICES).json()
    assert [d["id"] for d in listed["results"]] == [body["id"]]
    assert "api_key" not in listed["results"][0]


def test_the_key_is_stored_salted_and_hashed(as_user):
    body = register(as_user)
    key = body["api_key"]

    stored = DeviceAPIKey.objects.get(device_id=body["id"])
    assert stored.hashed_key.startswith("sha256-salted$")
    assert key not in stored.hashed_key
    assert key.split(".")[-1] not in stored.hashed_key
    algorithm, salt, digest = stored.hashed_key.split("$")
    assert (algorithm, len(salt), len(digest)) == ("sha256-salted", 16, 64)


def test_two_devices_hashes_differ_in_salt_and_digest(as_user):
    first = register(as_user, name="One")
    second = register(as_user, name="Two")

    _, salt_1, digest_1 = DeviceAPIKey.objects.get(device_id=first["id"]).hashed_key.split("$")
    _, salt_2, digest_2 = DeviceAPIKey.objects.get(device_id=second["id"]).hashed_key.split("$")
    assert first["api_key"] != second["api_key"]
    assert salt_1 != salt_2
    assert digest_1 != digest_2


# --- which keys work ----------------------------------------------------------------------


def test_the_key_works_in_either_header(as_user):
    key = register(as_user)["api_key"]

    assert heartbeat(key, header="authorization").status_code == 200
    assert heartbeat(key, header="x-device-key").status_code == 200


def test_a_wrong_key_is_401(as_user):
    key = register(as_user)["api_key"]

    response = heartbeat(key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert response.status_code == 401
    assert errors_code(response) == "device_key_invalid"
    assert heartbeat("not-a-key-at-all").status_code == 401
    assert heartbeat("not-a-key-at-all", header="x-device-key").status_code == 401


def test_rotating_answers_a_new_key_and_the_old_one_stops_at_once(as_user):
    body = register(as_user)
    old = body["api_key"]
    assert heartbeat(old).status_code == 200

    response = as_user.post(f"{DEVICES}{body['id']}/rotate-key/")

    assert response.status_code == 200
    new = response.json()["api_key"]
    assert new != old
    assert heartbeat(old).status_code == 401
    assert heartbeat(new).status_code == 200
    assert DeviceAPIKey.objects.filter(device_id=body["id"]).count() == 1


def test_deleting_the_device_kills_its_key(as_user):
    body = register(as_user)

    assert as_user.delete(f"{DEVICES}{body['id']}/").status_code == 204

    assert not Device.objects.filter(pk=body["id"]).exists()
    assert not DeviceAPIKey.objects.filter(device_id=body["id"]).exists()
    assert heartbeat(body["api_key"]).status_code == 401


def test_deactivating_the_device_refuses_its_key(as_user):
    body = register(as_user)

    response = as_user.patch(f"{DEVICES}{body['id']}/", {"is_active": False}, format="json")

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    refused = heartbeat(body["api_key"])
    assert refused.status_code == 401
    assert errors_code(refused) == "device_inactive"
    assert as_user.patch(f"{DEVICES}{body['id']}/", {"is_active": True}, format="json").status_code == 200
    assert heartbeat(body["api_key"]).status_code == 200


# --- devices are not people, people are not devices ---------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/auth/current-user/", "/api/v1/health-metrics/", "/api/v1/iot-devices/"])
@pytest.mark.parametrize("header", ["authorization", "x-device-key"])
def test_a_device_key_is_refused_on_peoples_endpoints(as_user, path, header):
    key = register(as_user)["api_key"]
    kwargs = {"HTTP_AUTHORIZATION": f"Api-Key {key}"} if header == "authorization" else {"HTTP_X_DEVICE_KEY": key}

    response = APIClient().get(path, **kwargs)

    assert response.status_code == 401


def test_a_persons_token_cannot_post_a_batch(as_user):
    response = as_user.post(
        INGEST,
        {
            "batch_id": "b1",
            "readings": [{"metric_type": "heart_rate", "value": 70, "recorded_at": "2026-01-01T00:00:00Z"}],
        },
        format="json",
    )

    assert response.status_code == 401  # no device key, as for any missing key
    assert response.json()["errors"][0]["code"] == "device_key"


def test_a_persons_token_cannot_send_a_heartbeat(as_user):
    assert as_user.post(HEARTBEAT, {"battery_level": 10}, format="json").status_code == 401


# --- only the owner changes a device ------------------------------------------------------


@pytest.fixture
def consented_clinician(user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    return clinician


def test_a_consented_clinician_sees_the_device_but_cannot_change_it(as_user, consented_clinician):
    body = register(as_user)
    url = f"{DEVICES}{body['id']}/"
    doctor = bearer(APIClient(), consented_clinician)

    assert doctor.get(url).status_code == 200
    assert doctor.post(f"{url}rotate-key/").status_code == 403
    assert doctor.patch(url, {"name": "Renamed"}, format="json").status_code == 403
    assert doctor.delete(url).status_code == 403

    device = Device.objects.get(pk=body["id"])
    assert device.name == "Wrist watch"
    assert heartbeat(body["api_key"]).status_code == 200  # the key was not rotated


def test_another_patient_cannot_see_or_change_the_device(as_user, other_user):
    body = register(as_user)
    url = f"{DEVICES}{body['id']}/"
    charlie = bearer(APIClient(), other_user)

    assert charlie.get(url).status_code == 404
    assert charlie.post(f"{url}rotate-key/").status_code == 404
    assert charlie.patch(url, {"name": "Mine"}, format="json").status_code == 404
    assert charlie.delete(url).status_code == 404
    assert Device.objects.filter(pk=body["id"], name="Wrist watch").exists()


def test_the_owner_can_rotate_patch_and_delete(as_user):
    body = register(as_user)
    url = f"{DEVICES}{body['id']}/"

    assert as_user.post(f"{url}rotate-key/").status_code == 200
    assert as_user.patch(url, {"name": "Renamed"}, format="json").json()["name"] == "Renamed"
    assert as_user.delete(url).status_code == 204
