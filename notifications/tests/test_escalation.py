"""A critical alert nobody acknowledges escalates: consented clinicians again, then the organization's on-call
staff; acknowledging or resolving it stops the clock. Opted-in patients' emergency contacts are emailed."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import EmergencyContact, Profile, Role
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory, UserFactory
from notifications.escalation import escalate_due
from notifications.models import Delivery, Escalation, EscalationPolicy, Notification, Options
from notifications.services import notify

pytestmark = pytest.mark.django_db

CRITICAL = {"metric": "Blood glucose", "message": "Blood glucose 48 mg/dL, below 54.", "alert_id": "c1"}


def _clinician_of(patient, email):
    clinician = ClinicianFactory(email=email)
    CareTeamGrantFactory(patient=patient, clinician=clinician, scopes=["metrics"])
    return clinician


def test_an_unacknowledged_critical_alert_escalates_to_clinicians_then_on_call_staff(
    user, django_capture_on_commit_callbacks
):
    clinician = _clinician_of(user, "dr.first@example.org")
    organization = clinician.clinician_profile.organization
    on_call = UserFactory(email="on.call@example.org", role=Role.STAFF)
    policy = EscalationPolicy.objects.create(organization=organization, minutes=5)
    policy.on_call.add(on_call)
    start = timezone.now()

    notify("health_alert_critical", patient=user, scope="metrics", payload=CRITICAL, dedupe_key="c1:opened")
    (escalation,) = Escalation.objects.all()
    assert escalation.subject == "health_alert_critical:c1"
    assert start + timedelta(minutes=5) <= escalation.next_step_at <= timezone.now() + timedelta(minutes=5)

    assert escalate_due(now=start + timedelta(minutes=4)) == 0  # within the organization's time: nothing
    first = escalation.next_step_at
    assert escalate_due(now=first) == 1
    assert escalate_due(now=first) == 0  # the job run twice takes the step once
    told = Notification.objects.filter(kind="health_alert_escalated")
    assert [n.recipient_id for n in told] == [clinician.pk]
    assert told[0].patient_id == user.pk
    assert "Blood glucose" in told[0].title

    escalation.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        assert escalate_due(now=escalation.next_step_at) == 1
    assert set(told.values_list("recipient_id", flat=True)) == {clinician.pk, on_call.pk}
    escalation.refresh_from_db()
    assert escalation.status == "exhausted"
    assert escalation.next_step_at is None
    assert [step["to"] for step in escalation.steps] == [[str(clinician.pk)], [str(on_call.pk)]]
    # The escalation breaks through: every channel, including email, with the neutral text only.
    (email,) = [m for m in mail.outbox if m.to == [on_call.email]]
    assert "mg/dL" not in email.subject + email.body
    assert "glucose" not in email.body.lower()


def test_the_default_escalation_time_is_fifteen_minutes(user):
    notify("health_alert_critical", patient=user, scope="metrics", payload=CRITICAL, dedupe_key="c1:opened")
    escalation = Escalation.objects.get()
    assert timedelta(minutes=14) < escalation.next_step_at - timezone.now() <= timedelta(minutes=15)


def test_emergency_contacts_of_a_patient_who_opted_in_are_emailed_once_without_values(
    user, django_capture_on_commit_callbacks
):
    profile = Profile.objects.get(user=user)
    EmergencyContact.objects.create(profile=profile, name="Sam", phone="+15550100", email="sam@example.org")
    EmergencyContact.objects.create(profile=profile, name="No mail", phone="+15550101")
    Options.objects.create(user=user, emergency_contacts=True)

    with django_capture_on_commit_callbacks(execute=True):
        notify("health_alert_critical", patient=user, scope="metrics", payload=CRITICAL, dedupe_key="c1:opened")
        notify("health_alert_critical", patient=user, scope="metrics", payload=CRITICAL, dedupe_key="c1:opened")

    (contact,) = [m for m in mail.outbox if m.to == ["sam@example.org"]]
    assert "check on" in contact.subject
    assert user.first_name in contact.subject
    assert "mg/dL" not in contact.subject + contact.body
    assert "glucose" not in (contact.subject + contact.body).lower()
    assert Delivery.objects.get(address="sam@example.org").status == "sent"


def test_emergency_contacts_are_not_told_without_the_patients_opt_in_or_for_a_warning(user):
    profile = Profile.objects.get(user=user)
    EmergencyContact.objects.create(profile=profile, name="Sam", phone="+15550100", email="sam@example.org")
    notify("health_alert_critical", patient=user, scope="metrics", payload=CRITICAL, dedupe_key="c1:opened")
    Options.objects.create(user=user, emergency_contacts=True)
    notify("health_alert", patient=user, scope="metrics", payload=CRITICAL, dedupe_key="w1")
    assert not Delivery.objects.exclude(address="").exists()


def test_the_preferences_api_turns_emergency_contact_alerts_on(as_user, user):
    answer = as_user.put("/api/v1/notifications/preferences/", {"emergency_contacts": True}, format="json")
    assert answer.status_code == 200
    assert answer.json()["emergency_contacts"] is True
    assert answer.json()["email_digest"] is False
    assert Options.objects.get(user=user).emergency_contacts
