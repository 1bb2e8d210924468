"""A device's configuration is checked on write; a bad stored one cannot stop the device-health sweep for others."""

import logging
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from conftest import bearer
from iot_devices.models import Device, DeviceAlert
from iot_devices.tasks import check_device_health_task
from iot_devices.tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db

DEVICES = "/api/v1/iot-devices/"


def open_kinds(device):
    return sorted(DeviceAlert.objects.filter(device=device, resolved_at__isnull=True).values_list("kind", flat=True))


def attrs(response):
    return sorted(error["attr"] for error in response.json()["errors"])


@pytest.mark.parametrize(
    ("configuration", "attr"),
    [
        ({"offline_after_minutes": "abc"}, "configuration.offline_after_minutes"),
        ({"offline_after_minutes": "30"}, "configuration.offline_after_minutes"),  # a string is not a number
        ({"offline_after_minutes": 12.5}, "configuration.offline_after_minutes"),
        ({"offline_after_minutes": True}, "configuration.offline_after_minutes"),
        ({"offline_after_minutes": 0}, "configuration.offline_after_minutes"),
        ({"offline_after_minutes": 10_081}, "configuration.offline_after_minutes"),
        ({"low_battery_percent": 100}, "configuration.low_battery_percent"),
        ({"low_battery_percent": None}, "configuration.low_battery_percent"),
        ({"sampling_rate": 5}, "configuration.sampling_rate"),  # unknown keys are refused
        (["offline_after_minutes", 5], "configuration"),
        ("abc", "configuration"),
    ],
)
def test_a_configuration_breaking_the_schema_is_refused_naming_the_key(api_client, user, configuration, attr):
    client = bearer(api_client, user)

    response = client.post(DEVICES, {"name": "Cuff", "configuration": configuration}, format="json")

    assert response.status_code == 400, response.content
    assert attrs(response) == [attr]
    assert not Device.objects.filter(owner=user).exists()


def test_a_patch_breaking_the_schema_is_refused_and_changes_nothing(api_client, user):
    device = DeviceFactory(owner=user, configuration={"offline_after_minutes": 30})
    client = bearer(api_client, user)

    response = client.patch(
        f"{DEVICES}{device.pk}/", {"configuration": {"offline_after_minutes": "abc", "colour": "red"}}, format="json"
    )

    assert response.status_code == 400, response.content
    assert attrs(response) == ["configuration.colour", "configuration.offline_after_minutes"]
    device.refresh_from_db()
    assert device.configuration == {"offline_after_minutes": 30}


def test_a_valid_configuration_is_stored_and_read_by_the_sweep(api_client, user):
    client = bearer(api_client, user)
    configuration = {"offline_after_minutes": 10, "low_battery_percent": 30}

    response = client.post(DEVICES, {"name": "Cuff", "configuration": configuration}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["configuration"] == configuration
    device = Device.objects.get(pk=response.json()["id"])
    Device.objects.filter(pk=device.pk).update(last_seen_at=timezone.now() - timedelta(minutes=11), battery_level=25)
    check_device_health_task()
    assert open_kinds(device) == ["low_battery", "offline"]  # both thresholds are the device's own


def test_the_admin_form_checks_the_configuration_too(user):
    device = DeviceFactory.build(owner=user, configuration={"offline_after_minutes": "abc", "colour": "red"})

    with pytest.raises(ValidationError) as refused:
        device.full_clean(exclude=["data_source"])

    messages = refused.value.message_dict["configuration"]
    assert messages == [
        "offline_after_minutes: A whole number from 1 to 10080.",
        "colour: Unknown configuration key. Known keys: offline_after_minutes, low_battery_percent.",
    ]


def test_a_bad_stored_configuration_does_not_stop_the_sweep_for_other_devices(user, other_user, caplog):
    """The row is written straight to the database, as rows from before the check were."""
    long_ago = timezone.now() - timedelta(hours=3)
    # Named to come first in the sweep's order (name, id), so every good device comes after it.
    bad = DeviceFactory(owner=other_user, name="Aaa broken", last_seen_at=long_ago, battery_level=5)
    Device.objects.filter(pk=bad.pk).update(configuration={"offline_after_minutes": "abc"})
    silent = DeviceFactory(owner=user, name="Silent watch", last_seen_at=long_ago)
    flat = DeviceFactory(owner=user, name="Flat scale", last_seen_at=timezone.now(), battery_level=9)
    fine = DeviceFactory(owner=user, name="Fine cuff", last_seen_at=timezone.now(), battery_level=80)

    with caplog.at_level(logging.ERROR):
        result = check_device_health_task()

    assert result == {"open": 2, "change": 2, "failed": 1}
    assert open_kinds(silent) == ["offline"]
    assert open_kinds(flat) == ["low_battery"]
    assert open_kinds(fine) == []
    assert open_kinds(bad) == []
    [logged] = [r.getMessage() for r in caplog.records if "sweep_item_failed" in r.getMessage()]
    assert str(bad.pk) in logged
    assert "check_device_health" in logged
    assert "offline_after_minutes" in logged  # the reason, in the traceback
