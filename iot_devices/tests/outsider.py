"""The iot_devices app's entries in the outsider registry (tests/test_outsider.py says what each key means).

Devices are health data of their owner: the metrics scope (iot_devices.models.OwnedQuerySet).
"""

from iot_devices.models import Device, DeviceAlert, DeviceAPIKey
from iot_devices.tests.factories import DeviceFactory, IngestBatchFactory


def _device(owner):
    """The owner's device with a live key, so a change to its key shows in the snapshot."""
    device = DeviceFactory(owner=owner)
    DeviceAPIKey.objects.create_key(device=device, name=device.name[:50])
    return device


def _device_alert(owner):
    return DeviceAlert.objects.create(device=_device(owner), kind="low_battery", message="Battery at 9%.")


def _device_snapshot(device):
    key = DeviceAPIKey.objects.filter(device=device).values("id", "prefix", "hashed_key", "revoked").first()
    return {"key": key, "batches": sorted(str(pk) for pk in device.batches.values_list("pk", flat=True))}


def device_key(owner) -> tuple[Device, str]:
    """A device of `owner` and its key: the harness's device-key actor (another patient's device)."""
    device = DeviceFactory(owner=owner)
    _, key = DeviceAPIKey.objects.create_key(device=device, name=device.name[:50])
    return device, key


API_ROUTES = {
    "device-list": {
        "make": _device,
        "patient_query": True,
        "post": lambda owner, actor: {"name": "Watch", "device_type": "smartwatch", "owner": str(owner.pk)},
    },
    "device-detail": {"make": _device, "snapshot": _device_snapshot, "body": {"name": "renamed", "is_active": False}},
    "device-rotate-key": {"make": _device, "snapshot": _device_snapshot},
    "device-changes": {"make": _device, "patient_query": True},
    "device-batches": {"make": lambda owner: IngestBatchFactory(device=_device(owner)).device},
    # The caller's own devices only: outsiders own none, so every total is zero.
    "device-stats": {"make": _device, "check": lambda body: body["devices"] == 0 and body["readings_accepted"] == 0},
    "device-alert-list": {"make": _device_alert, "scope": "metrics"},
    "device-alert-detail": {"make": _device_alert, "scope": "metrics"},
    "device-alert-acknowledge": {"make": _device_alert, "scope": "metrics"},
    # Read by the owner's people (JWT) or by a device key, which only ever sees its own device's batches.
    "ingest-batch-detail": {
        "make": lambda owner: IngestBatchFactory(device=_device(owner)),
        "scope": "metrics",
        "device_key": True,
    },
}

# Routes only a device key may call: a person's token is refused (401), and another device's key acts only
# on its own device. `body` is what the device sends; the owner's data must be unchanged afterwards.
DEVICE_KEY_ROUTES = {
    "device-heartbeat": {
        "body": {"battery_level": 3, "firmware_version": "6.6.6", "status": "maintenance"},
        "status": 200,
    },
    "ingest-batch-list": {
        "body": {
            "batch_id": "outsider-batch",
            "readings": [{"metric_type": "heart_rate", "value": 61, "recorded_at": "2026-01-05T08:00:00Z"}],
        },
        "status": 202,
    },
}

ADMIN_MODELS = {
    "iot_devices.device": {"make": _device},
    "iot_devices.ingestbatch": {"make": lambda owner: IngestBatchFactory(device=_device(owner))},
}

OWNER_DATA = {
    "iot_devices.deviceapikey": "device__owner",
    "iot_devices.devicealert": "device__owner",
}

DEVICE_KEY_ACTOR = device_key
