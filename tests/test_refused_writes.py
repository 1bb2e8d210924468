"""A write refused on someone else's data leaves an access-log row; the answer tells nothing; a read is logged once."""

import uuid

import pytest
from rest_framework.test import APIClient

from accounts.models import AccessLog
from accounts.tests.factories import CareTeamGrantFactory
from conftest import bearer
from health_metrics.models import AlertRule, HealthAlert
from health_metrics.tests.factories import ReadingFactory
from iot_devices.models import DeviceAlert
from iot_devices.tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def rows(**filters) -> list[tuple]:
    return list(
        AccessLog.objects.filter(**filters).values_list("actor_id", "patient_id", "resource", "object_id", "action")
    )


def body_without_request_id(response) -> dict:
    body = response.json()
    body.pop("request_id")
    return body


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_another_patients_refused_write_is_logged_and_answers_as_a_made_up_id(user, other_user, method):
    reading = ReadingFactory(user=user)
    client = bearer(APIClient(), other_user)

    real = getattr(client, method)(f"/api/v1/health-metrics/{reading.pk}/", {"notes": "mine now"}, format="json")
    made_up = getattr(client, method)(f"/api/v1/health-metrics/{uuid.uuid4()}/", {"notes": "x"}, format="json")

    assert real.status_code == made_up.status_code == 404
    assert body_without_request_id(real) == body_without_request_id(made_up)
    assert rows() == [(other_user.pk, user.pk, "reading", str(reading.pk), "refused")]
    reading.refresh_from_db()
    assert reading.notes == ""


def test_a_consented_clinicians_refused_write_is_logged(user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    reading = ReadingFactory(user=user)
    client = bearer(APIClient(), clinician)

    response = client.patch(f"/api/v1/health-metrics/{reading.pk}/", {"notes": "changed"}, format="json")

    assert response.status_code == 403
    assert rows() == [(clinician.pk, user.pk, "reading", str(reading.pk), "refused")]  # not an "update"


def test_a_refused_write_on_an_object_found_through_its_device_names_the_owner(user, other_user):
    alert = DeviceAlert.objects.create(device=DeviceFactory(owner=user), kind="offline", message="No contact.")
    client = bearer(APIClient(), other_user)

    response = client.post(f"/api/v1/iot-devices/alerts/{alert.pk}/acknowledge/")

    assert response.status_code == 404
    assert rows() == [(other_user.pk, user.pk, "devicealert", str(alert.pk), "refused")]


def test_refused_reads_and_ones_own_writes_leave_no_refused_row(as_user, user, other_user):
    theirs, mine = ReadingFactory(user=other_user), ReadingFactory(user=user)

    assert as_user.get(f"/api/v1/health-metrics/{theirs.pk}/").status_code == 404
    assert as_user.patch(f"/api/v1/health-metrics/{mine.pk}/", {"notes": "ok"}, format="json").status_code == 200

    assert rows() == []


def test_the_patient_sees_the_refused_write_in_their_access_history(as_user, user, other_user):
    reading = ReadingFactory(user=user)
    bearer(APIClient(), other_user).delete(f"/api/v1/health-metrics/{reading.pk}/")

    history = as_user.get("/api/v1/access-log/").json()["results"]

    assert [(e["action"], e["resource"], e["object_id"]) for e in history] == [("refused", "reading", str(reading.pk))]


def test_acknowledging_an_alert_is_logged_once(user, clinician):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    reading = ReadingFactory(user=user, metric_type_id=2, value=190)
    rule = AlertRule.objects.create(user=user, metric_type_id=2, warn_high=100)
    alert = HealthAlert.objects.create(
        user=user,
        metric_type_id=2,
        rule=rule,
        rule_version=rule.version,
        severity="critical",
        direction="high",
        message="High.",
        value=190,
        started_at=reading.recorded_at,
        last_reading_at=reading.recorded_at,
    )
    client = bearer(APIClient(), clinician)

    response = client.post(f"/api/v1/health-metrics/alerts/{alert.pk}/acknowledge/")

    assert response.status_code == 200, response.content
    assert rows() == [(clinician.pk, user.pk, "healthalert", str(alert.pk), "update")]
