from iot_devices.tests.factories import DeviceFactory, IngestBatchFactory

OUTSIDER_FACTORIES = {
    "device": lambda owner: DeviceFactory(owner=owner),
    "ingest-batch": lambda owner: IngestBatchFactory(device=DeviceFactory(owner=owner)),
}
