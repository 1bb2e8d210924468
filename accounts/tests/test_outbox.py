"""The email outbox: emails are owed in the request's transaction, sent once by a worker, retried by the sweeper.

The end-to-end outage (Redis really stopped under a served app and worker) is in
tests/test_dependencies_down.py; these tests pin each rule on its own.
"""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import EmailKind, EmailStatus, OutboxEmail
from accounts.services import EMAIL_MAX_ATTEMPTS, requeue_outbox_emails, send_outbox_email
from tests.processes import broker_unreachable, free_port

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"
RESET = "/api/v1/auth/password/reset/"


def signup(email="new.patient@example.org"):
    password = "a-Long-enough-passphrase-7"
    return {"email": email, "password": password, "password_confirm": password}


@pytest.fixture
def smtp_refused(settings):
    """Email over SMTP to a port nothing listens on: every send is refused, as with the mail server down."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False


def test_registering_owes_a_verification_email_that_a_worker_sends_once(api_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = api_client.post(REGISTER, signup())
    assert response.status_code == 201
    owed = OutboxEmail.objects.get()
    assert (owed.kind, owed.user.email, owed.status, owed.attempts) == (
        EmailKind.VERIFICATION,
        "new.patient@example.org",
        EmailStatus.PENDING,
        0,
    )
    assert mail.outbox == []  # owed, written with the user; sent only once the request has committed

    for callback in callbacks:
        callback()
    owed.refresh_from_db()
    assert (owed.status, owed.attempts, owed.sent_at is not None) == (EmailStatus.SENT, 1, True)
    assert len(mail.outbox) == 1
    token = re.search(r"token=(\S+)", mail.outbox[0].body).group(1)
    # The row keeps no secret: the link was minted when the email was sent.
    assert token not in str(list(OutboxEmail.objects.values().get().values()))

    assert send_outbox_email(email_id=owed.pk) is None  # a second delivery of the task sends nothing
    assert len(mail.outbox) == 1


def test_with_the_broker_unreachable_register_and_reset_answer_as_usual_and_the_emails_wait(
    api_client, user, not_eager, django_capture_on_commit_callbacks
):
    with broker_unreachable(), django_capture_on_commit_callbacks(execute=True):
        registered = api_client.post(REGISTER, signup())
        known = api_client.post(RESET, {"email": user.email})
        unknown = api_client.post(RESET, {"email": "nobody@example.org"})
    assert registered.status_code == 201
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    assert known.status_code == 200
    assert sorted(OutboxEmail.objects.values_list("kind", "status")) == [
        (EmailKind.PASSWORD_RESET, EmailStatus.PENDING),
        (EmailKind.VERIFICATION, EmailStatus.PENDING),
    ]
    assert mail.outbox == []

    for owed in OutboxEmail.objects.all():  # what the sweeper's tasks do once the broker is back
        assert send_outbox_email(email_id=owed.pk) == EmailStatus.SENT
    assert sorted(message.to[0] for message in mail.outbox) == ["new.patient@example.org", user.email]


def test_reset_emails_are_limited_per_address_an_hour_and_the_answer_never_changes(
    api_client, user, settings, django_capture_on_commit_callbacks
):
    settings.PASSWORD_RESET_EMAILS_PER_HOUR = 3
    with django_capture_on_commit_callbacks(execute=True):
        unknown = api_client.post(RESET, {"email": "nobody@example.org"})
        answers = [api_client.post(RESET, {"email": email}) for email in [user.email] * 4 + [user.email.upper()]]
    assert [(a.status_code, a.json()) for a in answers] == [(unknown.status_code, unknown.json())] * 5
    assert len(mail.outbox) == 3
    assert OutboxEmail.objects.filter(user=user, kind=EmailKind.PASSWORD_RESET).count() == 3

    OutboxEmail.objects.update(created_at=timezone.now() - timedelta(minutes=61))  # an hour later
    with django_capture_on_commit_callbacks(execute=True):
        assert api_client.post(RESET, {"email": user.email}).status_code == 200
    assert len(mail.outbox) == 4


def test_a_refused_send_is_kept_and_sent_by_the_sweeper_once_due(user, settings, smtp_refused):
    owed = OutboxEmail.objects.create(kind=EmailKind.PASSWORD_RESET, user=user)
    assert send_outbox_email(email_id=owed.pk) == EmailStatus.PENDING
    owed.refresh_from_db()
    assert (owed.status, owed.attempts) == (EmailStatus.PENDING, 1)
    assert owed.last_error.startswith("ConnectionRefusedError")
    now = timezone.now()
    assert requeue_outbox_emails(now=now) == 0  # not due yet: tried again a minute later

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the mail server is back
    assert requeue_outbox_emails(now=now + timedelta(minutes=1, seconds=1)) == 1  # (tasks run eagerly here)
    owed.refresh_from_db()
    assert (owed.status, owed.attempts, owed.last_error) == (EmailStatus.SENT, 2, "")
    assert [message.to for message in mail.outbox] == [[user.email]]
    assert requeue_outbox_emails(now=now + timedelta(hours=1)) == 0


def test_a_send_refused_on_its_last_attempt_ends_failed(user, smtp_refused):
    owed = OutboxEmail.objects.create(kind=EmailKind.VERIFICATION, user=user, attempts=EMAIL_MAX_ATTEMPTS - 1)
    assert send_outbox_email(email_id=owed.pk) == EmailStatus.FAILED
    assert requeue_outbox_emails(now=timezone.now() + timedelta(days=1)) == 0
    assert OutboxEmail.objects.get().status == EmailStatus.FAILED


def test_a_send_abandoned_by_its_worker_is_taken_again_once_stale_and_not_before(user, other_user):
    now = timezone.now()
    sending = {"kind": EmailKind.VERIFICATION, "status": EmailStatus.SENDING, "attempts": 1}
    running = OutboxEmail.objects.create(user=user, claimed_at=now, **sending)
    abandoned = OutboxEmail.objects.create(user=other_user, claimed_at=now - timedelta(minutes=10), **sending)
    assert send_outbox_email(email_id=running.pk) is None  # its worker is still on it

    assert requeue_outbox_emails(now=now) == 1  # (tasks run eagerly here)
    assert [message.to for message in mail.outbox] == [[other_user.email]]
    abandoned.refresh_from_db()
    running.refresh_from_db()
    assert (abandoned.status, abandoned.attempts) == (EmailStatus.SENT, 2)
    assert (running.status, running.attempts) == (EmailStatus.SENDING, 1)


def test_an_email_with_nothing_left_to_say_is_skipped(user):
    user.email_verified_at = timezone.now()  # verified since the email was owed
    user.save()
    owed = OutboxEmail.objects.create(kind=EmailKind.VERIFICATION, user=user)
    assert send_outbox_email(email_id=owed.pk) == EmailStatus.SKIPPED
    assert mail.outbox == []
