from iot_devices.models import DeviceAlert
from iot_devices.tests.factories import DeviceFactory, IngestBatchFactory

OUTSIDER_FACTORIES = {
    "device": lambda owner: DeviceFactory(owner=owner),
    "ingest-batch": lambda owner: IngestBatchFactory(device=DeviceFactory(owner=owner)),
    "device-alert": lambda owner: DeviceAlert.objects.create(
        device=DeviceFactory(owner=owner), kind="low_battery", message="Battery at 9%."
    ),
}
