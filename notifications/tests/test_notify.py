"""notify(): recipients through the access rule, once per event, one delivery per channel, sent once."""

from datetime import time, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory, UserFactory
from notifications import channels
from notifications.models import Delivery, Notification, Preference, QuietHours
from notifications.services import deliver, notify, requeue_due_deliveries

pytestmark = pytest.mark.django_db

GLUCOSE = {"metric": "Blood glucose", "message": "Blood glucose 48 mg/dL, below 54.", "alert_id": "a1"}


def test_a_patients_event_reaches_the_patient_and_clinicians_whose_grant_covers_its_scope(user):
    covered, other_scope, revoked = (ClinicianFactory(email=f"dr{i}@example.org") for i in range(3))
    CareTeamGrantFactory(patient=user, clinician=covered, scopes=["metrics"])
    CareTeamGrantFactory(patient=user, clinician=other_scope, scopes=["appointments"])
    CareTeamGrantFactory(patient=user, clinician=revoked, scopes=["metrics"], revoked_at=timezone.now())

    sent = notify("health_alert_critical", patient=user, scope="metrics", payload=GLUCOSE, dedupe_key="a1:opened")

    assert {n.recipient_id for n in sent} == {user.pk, covered.pk}
    assert all(n.patient_id == user.pk and n.severity == "critical" for n in sent)
    assert Notification.objects.get(recipient=user).title == "Critical: Blood glucose"


def test_a_doubled_event_tells_each_recipient_once(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        notify("health_alert_critical", patient=user, payload=GLUCOSE, dedupe_key="a1:opened")
        notify("health_alert_critical", patient=user, payload=GLUCOSE, dedupe_key="a1:opened")

    assert Notification.objects.filter(recipient=user).count() == 1
    assert Delivery.objects.filter(notification__recipient=user, channel="email").count() == 1
    assert len(mail.outbox) == 1


def test_the_email_says_nothing_of_the_value_and_links_to_the_app(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        notify("health_alert_critical", patient=user, payload=GLUCOSE, dedupe_key="a1:opened")

    (message,) = mail.outbox
    assert message.to == [user.email]
    assert "48" not in message.subject
    assert "glucose" not in message.subject.lower()
    assert "mg/dL" not in message.body
    assert "glucose" not in message.body.lower()
    assert "/notifications/" in message.body
    delivery = Delivery.objects.get(channel="email")
    assert (delivery.status, delivery.attempts) == ("sent", 1)


def test_a_delivery_is_sent_once_however_often_it_is_handed_on(user):
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)
    delivery = notification.deliveries.get(channel="email")

    assert deliver(delivery_id=delivery.pk) == "sent"
    assert deliver(delivery_id=delivery.pk) is None
    assert requeue_due_deliveries() == 2  # the push and SMS deliveries, still queued; the email is done
    assert len(mail.outbox) == 1


def test_a_muted_kind_is_kept_as_not_sent_and_a_critical_one_cannot_be_muted(user):
    Preference.objects.create(user=user, kind="message", channel="email", enabled=False)
    Preference.objects.create(user=user, kind="health_alert_critical", channel="email", enabled=False)

    (message,) = notify("message", recipients=[user], payload={"sender_name": "Dr Chen", "text": "See you soon"})
    (critical,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    muted = message.deliveries.get(channel="email")
    assert (muted.status, muted.reason) == ("not_sent", "muted")
    assert critical.deliveries.get(channel="email").status == "queued"


def test_quiet_hours_hold_a_delivery_until_they_end_and_a_critical_one_breaks_through(user):
    now = timezone.now()
    start = (now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    QuietHours.objects.create(user=user, start=start, end=end)
    (message,) = notify("message", recipients=[user], payload={"sender_name": "Dr Chen", "text": "Hello"})
    (critical,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)
    now = timezone.now()

    assert deliver(delivery_id=message.deliveries.get(channel="email").pk, now=now) == "queued"
    assert deliver(delivery_id=critical.deliveries.get(channel="email").pk, now=now) == "sent"
    held = message.deliveries.get(channel="email")
    assert (held.status, held.reason, held.attempts) == ("queued", "quiet_hours", 0)
    assert held.next_attempt_at > now
    assert deliver(delivery_id=held.pk, now=held.next_attempt_at + timedelta(seconds=1)) == "sent"
    assert len(mail.outbox) == 2


def test_an_error_that_can_recover_is_retried_later_then_given_up(user, monkeypatch):
    def refuse(delivery):
        raise channels.Retry("connection refused")

    monkeypatch.setitem(channels.BACKENDS, "email", refuse)
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)
    delivery = notification.deliveries.get(channel="email")
    at = timezone.now()
    outcomes = []
    for _ in range(6):
        outcomes.append(deliver(delivery_id=delivery.pk, now=at))
        delivery.refresh_from_db()
        at = (delivery.next_attempt_at or at) + timedelta(seconds=1)

    assert outcomes == ["queued", "queued", "queued", "queued", "failed", None]
    assert (delivery.status, delivery.reason, delivery.attempts) == ("failed", "gave_up", 5)
    assert "connection refused" in delivery.last_error


def test_an_unknown_kind_is_refused_by_name(user):
    with pytest.raises(ValueError, match="unknown notification kind 'nope'"):
        notify("nope", recipients=[user])


def test_a_clinicians_message_reaches_only_the_recipient(user):
    other = UserFactory(email="other@example.org")
    notify("message", recipients=[user], payload={"sender_name": "Dr Chen", "text": "Hi"})

    assert Notification.objects.filter(recipient=other).count() == 0
    assert Notification.objects.get(recipient=user).body == "Hi"


def test_quiet_hours_rows_compare_by_local_time(user):
    QuietHours.objects.create(user=user, start=time(22), end=time(7))
    assert str(QuietHours.objects.get(user=user)) == "22:00-07:00"


def test_a_care_team_grant_and_its_revocation_tell_the_clinician(user, django_capture_on_commit_callbacks):
    from accounts.services import grant_care_team_access, revoke_care_team_grant

    clinician = ClinicianFactory(email="dr.told@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        grant = grant_care_team_access(
            patient=user, clinician_email=clinician.email, scopes=["metrics"], expires_at=None
        )
        revoke_care_team_grant(grant=grant, revoked_by=user)
        revoke_care_team_grant(grant=grant, revoked_by=user)

    told = Notification.objects.filter(recipient=clinician).order_by("created_at")
    assert [n.kind for n in told] == ["care_team_granted", "care_team_revoked"]
    assert all(n.patient_id == user.pk for n in told)
    assert not Notification.objects.filter(recipient=user).exists()
    assert [m.to for m in mail.outbox] == [[clinician.email], [clinician.email]]
