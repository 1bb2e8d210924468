"""Across the broker: a device batch, its rollups and the anomaly checks after them, each run by a real worker."""

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from config.celery import app
from health_metrics.models import DailySummary, HealthAlert
from iot_devices.services import register_device


def purge(*queues):
    with app.connection_for_write() as connection:
        for queue in queues:
            connection.default_channel.queue_purge(queue)


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_low_glucose_readings_opens_one_alert_through_a_real_worker(not_eager, logging_restored, settings):
    settings.ROLLUP_DELAY_SECONDS = 0
    purge("ingest", "default")
    owner = UserFactory()
    _, key = register_device(owner=owner, name="CGM")
    device = APIClient()
    device.credentials(HTTP_X_DEVICE_KEY=key)
    now = timezone.now().replace(microsecond=0)
    readings = [
        {"metric_type": "glucose_cgm", "value": value, "recorded_at": (now - timedelta(minutes=minutes)).isoformat()}
        for value, minutes in ((110, 25), (62, 20), (51, 15), (58, 10))
    ]
    try:
        response = device.post("/api/v1/iot-devices/ingest/", {"batch_id": "cgm", "readings": readings}, format="json")
        assert response.status_code == 202
        assert not HealthAlert.objects.filter(user=owner).exists()  # nothing runs in-process
        with start_worker(app, pool="solo", perform_ping_check=False, queues=["ingest", "default"]):
            deadline = time.monotonic() + 30
            while not HealthAlert.objects.filter(user=owner).exists():
                assert time.monotonic() < deadline, "no alert within 30 s"
                time.sleep(0.1)
    finally:
        purge("ingest", "default")

    (alert,) = HealthAlert.objects.filter(user=owner)
    assert (alert.severity, alert.direction, alert.status, alert.value) == ("critical", "low", "open", 51)
    assert alert.readings.count() == 3
    assert DailySummary.objects.filter(user=owner, metric_type_id=10).exists()  # the checks ran after the rollups
