"""The one seam through which device alerts leave this app: `emit_device_alert` tells the device's owner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from notifications.services import notify

if TYPE_CHECKING:
    from .models import DeviceAlert


def emit_device_alert(*, alert: DeviceAlert) -> None:
    device = alert.device
    notify(
        "device_alert",
        recipients=[device.owner],
        about=device.owner,
        payload={"device": device.name, "message": alert.message, "device_id": str(device.pk)},
        dedupe_key=f"device_alert:{alert.pk}",
    )
