import pytest

from iot_devices.authentication import _usable_key
from iot_devices.services import register_device, rotate_device_key

pytestmark = pytest.mark.django_db


def test_the_key_lookup_loads_the_right_device_fields(user):
    device, key = register_device(owner=user, name="Kitchen scale", device_type="scale")
    loaded, expiry = _usable_key(key)
    assert (loaded.pk, loaded.owner_id, loaded.name, loaded.is_active, expiry) == (
        device.pk,
        user.pk,
        "Kitchen scale",
        True,
        None,
    )
    assert loaded.device_type == "scale"  # a deferred field loads on first use


def test_the_key_lookup_refuses_a_rotated_or_forged_key(user):
    device, key = register_device(owner=user, name="Watch")
    prefix = key.partition(".")[0]
    assert _usable_key(f"{prefix}.not-the-secret") is None
    rotate_device_key(device=device)
    assert _usable_key(key) is None
