import factory

from accounts.tests.factories import UserFactory
from health_metrics.services import create_data_source
from iot_devices.models import Device, IngestBatch


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Watch {n}")
    device_type = "smartwatch"
    data_source = factory.LazyAttribute(lambda o: create_data_source(user=o.owner, kind="device", name=o.name))


class IngestBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IngestBatch

    device = factory.SubFactory(DeviceFactory)
    batch_id = factory.Sequence(lambda n: f"batch-{n}")
    payload = b"[]"
    payload_sha256 = "0" * 64
    reading_count = 0
