"""Health alerts reach people through notify(): the patient and the clinicians whose grant covers metrics."""

import pytest
from django.core import mail

from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory
from health_metrics.tests.test_alerts import GLUCOSE, add, check
from notifications.models import Notification

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
