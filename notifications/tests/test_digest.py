"""The daily digest: clinicians told through grants and people who chose it get one email, once, at their hour."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Profile
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory
from notifications.digests import next_digest_at, send_due_digests
from notifications.models import Delivery, Digest, Notification, Options
from notifications.services import notify

NEW_YORK, LONDON = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")
WARNING = {"metric": "Heart rate", "message": "Heart rate 131 /min, above 120.", "alert_id": "w1"}
CRITICAL = {"metric": "Blood glucose", "message": "Blood glucose 48 mg/dL, below 54.", "alert_id": "c1"}


@pytest.mark.parametrize(
    ("zone", "now", "due"),
    [
        (NEW_YORK, datetime(2026, 6, 1, 11, 0, tzinfo=UTC), datetime(2026, 6, 1, 12, 0, tzinfo=UTC)),  # 07:00 EDT
        (NEW_YORK, datetime(2026, 6, 1, 12, 0, tzinfo=UTC), datetime(2026, 6, 2, 12, 0, tzinfo=UTC)),  # 08:00: next
        # The night the clocks go forward (8 March 2026): 08:00 EDT is 12:00 UTC, the day before it was 13:00.
        (NEW_YORK, datetime(2026, 3, 7, 14, 0, tzinfo=UTC), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        # And back (1 November 2026): 08:00 EST is 13:00 UTC.
        (NEW_YORK, datetime(2026, 10, 31, 13, 0, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
        (LONDON, datetime(2026, 3, 28, 23, 30, tzinfo=UTC), datetime(2026, 3, 29, 7, 0, tzinfo=UTC)),  # BST starts
    ],
)
def test_the_digest_is_due_at_the_next_local_digest_hour(zone, now, due):
    assert next_digest_at(now, zone, 8) == due


def test_a_digest_hour_the_clocks_skip_is_the_first_minute_after_the_jump():
    # 02:00 does not exist in New York on 8 March 2026: the clocks go from 01:59 EST to 03:00 EDT (07:00 UTC).
    assert next_digest_at(datetime(2026, 3, 8, 5, 0, tzinfo=UTC), NEW_YORK, 2) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_a_clinicians_non_critical_patient_events_wait_for_the_digest_and_critical_ones_do_not(
    user, django_capture_on_commit_callbacks
):
    clinician = ClinicianFactory(email="dr.digest@example.org")
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])

    with django_capture_on_commit_callbacks(execute=True):
        notify("health_alert", patient=user, scope="metrics", payload=WARNING, dedupe_key="w1")
        notify("health_alert_critical", patient=user, scope="metrics", payload=CRITICAL, dedupe_key="c1")

    clinicians = Delivery.objects.filter(notification__recipient=clinician, notification__kind="health_alert")
    waiting, push = clinicians.get(channel="email"), clinicians.get(channel="push")
    assert (waiting.status, waiting.digest.user_id) == ("digest", clinician.pk)
    assert (push.status, push.reason) == ("not_sent", "in_digest")
    # The patient's own warning is not digested, and the critical alert reached the clinician at once.
    assert not Delivery.objects.filter(notification__recipient=user, status="digest").exists()
    assert clinician.email in [m.to[0] for m in mail.outbox]
    assert Notification.objects.filter(recipient=clinician).count() == 2  # both in the inbox at once


@pytest.mark.django_db
def test_the_digest_is_sent_once_at_its_hour_and_names_kinds_and_counts_only(user):
    clinician = ClinicianFactory(email="dr.many@example.org")
    for n in range(3):
        patient = user if n == 0 else CareTeamGrantFactory(clinician=clinician, scopes=["metrics"]).patient
        if n == 0:
            CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
        notify("health_alert", patient=patient, scope="metrics", payload=WARNING, dedupe_key=f"w{n}")
    (digest,) = Digest.objects.filter(user=clinician)

    assert send_due_digests(now=digest.due_at - timedelta(seconds=1)) == 0  # not before its hour
    mail.outbox.clear()
    assert send_due_digests(now=digest.due_at) == 1
    assert send_due_digests(now=digest.due_at + timedelta(minutes=5)) == 0  # a second run: nothing more

    (message,) = [m for m in mail.outbox if m.to == [clinician.email]]
    assert message.subject == "OpenVitals: your daily summary"
    assert "Health alert: 3" in message.body
    assert "131" not in message.body
    assert "Heart rate" not in message.body
    digest.refresh_from_db()
    assert digest.status == "sent"
    assert set(digest.deliveries.values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db
def test_notifications_read_in_the_app_are_left_out_and_an_all_read_digest_is_not_sent(user):
    clinician = ClinicianFactory(email="dr.reader@example.org")
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    notify("health_alert", patient=user, scope="metrics", payload=WARNING, dedupe_key="w1")
    Notification.objects.filter(recipient=clinician).update(read_at=timezone.now())
    (digest,) = Digest.objects.filter(user=clinician)
    mail.outbox.clear()

    send_due_digests(now=digest.due_at)

    digest.refresh_from_db()
    assert (digest.status, digest.reason) == ("not_sent", "nothing_unread")
    assert mail.outbox == []
    assert Delivery.objects.get(digest=digest).reason == "read_in_app"


@pytest.mark.django_db
def test_a_person_who_chose_the_digest_gets_low_severity_emails_in_it_and_warnings_as_usual(user, as_user):
    answer = as_user.put("/api/v1/notifications/preferences/", {"email_digest": True}, format="json")
    assert answer.status_code == 200
    assert answer.json()["email_digest"] is True
    Profile.objects.filter(user=user).update(timezone="America/New_York")

    notify("export_failed", recipients=[user], payload={"reason": "The export was too large."}, dedupe_key="e1")
    notify("message", recipients=[user], about=user, payload={"sender_name": "Dr A", "text": "Hi"}, dedupe_key="m1")

    export = Delivery.objects.get(notification__kind="export_failed", channel="email")
    message = Delivery.objects.get(notification__kind="message", channel="email")
    assert export.status == "digest"
    assert message.status == "digest"
    assert export.digest.due_at.astimezone(NEW_YORK).hour == 8
    Options.objects.filter(user=user).update(email_digest=False)
    notify("export_failed", recipients=[user], payload={"reason": "Again."}, dedupe_key="e2")
    assert Delivery.objects.get(notification__dedupe_key="e2", channel="email").status == "queued"


@pytest.mark.django_db
def test_a_digest_whose_mail_server_is_away_is_tried_again_later(user, settings):
    clinician = ClinicianFactory(email="dr.retry@example.org")
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])
    notify("health_alert", patient=user, scope="metrics", payload=WARNING, dedupe_key="w1")
    (digest,) = Digest.objects.filter(user=clinician)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2  # nothing listens

    send_due_digests(now=digest.due_at)

    digest.refresh_from_db()
    assert (digest.status, digest.attempts) == ("queued", 1)
    assert digest.due_at > timezone.now()
    assert "Connection" in digest.last_error
