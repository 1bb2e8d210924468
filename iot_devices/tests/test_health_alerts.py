"""Device batches raise health alerts like every other write path, once however often they are processed."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from health_metrics.alerts import check_anomalies
from health_metrics.models import HealthAlert
from iot_devices.models import IngestBatch
from iot_devices.services import process_batch, register_device

pytestmark = pytest.mark.django_db


def test_a_device_batch_processed_twice_raises_one_alert(user, django_capture_on_commit_callbacks):
    device, key = register_device(owner=user, name="CGM")
    now = timezone.now().replace(microsecond=0)
    readings = [
        {
            "metric_type": "glucose_cgm",
            "value": v,
            "unit": "mg/dL",
            "recorded_at": (now - timedelta(minutes=m)).isoformat(),
        }
        for v, m in ((50, 30), (48, 25), (52, 20))
    ]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/iot-devices/ingest/", {"batch_id": "cgm-1", "readings": readings}, format="json"
        )
    assert response.status_code == 202
    assert HealthAlert.objects.filter(user=user).count() == 1
    # A re-delivery: the batch is taken again (as after a worker crash) and its readings are all duplicates.
    IngestBatch.objects.filter(pk=response.json()["id"]).update(status="received")
    with django_capture_on_commit_callbacks(execute=True):
        process_batch(batch_id=response.json()["id"])
    check_anomalies(user_id=user.pk, days={(10, (now - timedelta(minutes=30)).date())})
    (alert,) = HealthAlert.objects.filter(user=user)
    assert alert.readings.count() == 3
