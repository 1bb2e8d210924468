"""Health alerts reach people through notify(): the patient and the clinicians whose grant covers metrics."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory
from conftest import bearer
from health_metrics.alerts import acknowledge_alert
from health_metrics.models import HealthAlert
from health_metrics.tests.test_alerts import GLUCOSE, add, check
from notifications.escalation import escalate_due
from notifications.models import Escalation, Notification

pytestmark = pytest.mark.django_db


def test_a_critical_glucose_reaches_the_patients_and_the_clinicians_inbox(user, django_capture_on_commit_callbacks):
    clinician = ClinicianFactory(email="dr.glucose@example.org")
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    outsider = ClinicianFactory(email="dr.other@example.org")
    CareTeamGrantFactory(patient=user, clinician=outsider, scopes=["appointments"])

    with django_capture_on_commit_callbacks(execute=True):
        add(user, GLUCOSE, 48)
        check(user, GLUCOSE)

    told = Notification.objects.filter(kind="health_alert_critical")
    assert {n.recipient_id for n in told} == {user.pk, clinician.pk}
    assert all(n.patient_id == user.pk for n in told)
    assert "Blood glucose" in told.first().title
    assert sorted(m.to[0] for m in mail.outbox) == sorted([user.email, clinician.email])
    # No value, unit or type outside the app (the body's link holds a random id, so digits are not checked).
    assert all("mg/dL" not in m.subject + m.body and "glucose" not in (m.subject + m.body).lower() for m in mail.outbox)


def test_checking_again_tells_nobody_twice(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        add(user, GLUCOSE, 48)
        check(user, GLUCOSE)
        check(user, GLUCOSE)

    assert Notification.objects.filter(recipient=user).count() == 1
    assert len(mail.outbox) == 1


def test_a_warning_goes_to_the_inbox_and_not_by_email(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        add(user, GLUCOSE, 65)
        check(user, GLUCOSE)

    (notification,) = Notification.objects.filter(recipient=user)
    assert (notification.kind, notification.severity) == ("health_alert", "warning")
    assert mail.outbox == []


def test_acknowledging_the_alert_stops_the_escalation(user, django_capture_on_commit_callbacks):
    clinician = ClinicianFactory(email="dr.ack@example.org")
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    with django_capture_on_commit_callbacks(execute=True):
        add(user, GLUCOSE, 48)
        check(user, GLUCOSE)
    alert = HealthAlert.objects.get(user=user)
    escalation = Escalation.objects.get()
    assert escalation.subject == f"health_alert_critical:{alert.pk}"

    answer = bearer(APIClient(), clinician).post(f"/api/v1/health-metrics/alerts/{alert.pk}/acknowledge/")
    assert answer.status_code == 200, answer.content

    escalation.refresh_from_db()
    assert (escalation.status, escalation.closed_by_id) == ("acknowledged", clinician.pk)
    assert escalate_due(now=timezone.now() + timedelta(hours=1)) == 0
    assert not Notification.objects.filter(kind="health_alert_escalated").exists()


def test_a_resolved_alert_stops_escalating(user):
    add(user, GLUCOSE, 48)
    check(user, GLUCOSE)
    alert = HealthAlert.objects.get(user=user)
    acknowledge_alert(alert=alert, by=user)  # the patient saw it: that counts too
    assert Escalation.objects.get().status == "acknowledged"


def test_the_alert_shows_its_escalation_steps_and_who_closed_it(user, django_capture_on_commit_callbacks):
    clinician = ClinicianFactory(email="dr.steps@example.org")
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    add(user, GLUCOSE, 48)
    check(user, GLUCOSE)
    alert = HealthAlert.objects.get(user=user)
    as_clinician = bearer(APIClient(), clinician)
    assert as_clinician.get(f"/api/v1/health-metrics/alerts/{alert.pk}/").json()["escalation"]["status"] == "open"

    escalate_due(now=timezone.now() + timedelta(minutes=16))

    listed = as_clinician.get("/api/v1/health-metrics/alerts/").json()["results"]
    (escalation,) = [item["escalation"] for item in listed if item["id"] == str(alert.pk)]
    assert (escalation["status"], escalation["step"]) == ("open", 1)
    assert escalation["steps"][0]["to"] == [str(clinician.pk)]
    acknowledged = as_clinician.post(f"/api/v1/health-metrics/alerts/{alert.pk}/acknowledge/").json()
    assert acknowledged["escalation"]["status"] == "acknowledged"
    assert acknowledged["escalation"]["closed_by"] == str(clinician.pk)
