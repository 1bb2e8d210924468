from io import StringIO

import pytest
from django.core.management import call_command

from accounts.management.commands.seed_demo import DEMO_PASSWORD
from accounts.services import create_user
from health_metrics.models import Reading
from iot_devices.models import BatchStatus, Device, IngestBatch


@pytest.mark.django_db(transaction=True)
def test_the_simulator_registers_devices_and_posts_batches_over_http(live_server):
    alice = create_user(email="alice@openvitals.local", password=DEMO_PASSWORD)
    bob = create_user(email="bob@openvitals.local", password=DEMO_PASSWORD)
    out = StringIO()
    call_command(
        "simulate_devices", "--devices=2", "--minutes=10", "--batch-minutes=5", f"--url={live_server.url}", stdout=out
    )
    devices = Device.objects.filter(owner__in=[alice, bob])
    assert sorted(devices.values_list("owner__email", flat=True)) == ["alice@openvitals.local", "bob@openvitals.local"]
    assert IngestBatch.objects.filter(device__in=devices, status=BatchStatus.DONE).count() == 4
    assert Reading.objects.filter(data_source__device__in=devices, data_source__kind="device").count() == 20
    assert "Posted 4 batches (20 readings)" in out.getvalue()
    assert "done 4" in out.getvalue()
