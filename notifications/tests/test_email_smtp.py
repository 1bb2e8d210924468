"""The email channel through Django's SMTP backend to a real SMTP server (aiosmtpd) on loopback: what it sends,
a server that is down (retried later), and one that refuses the recipient (failed)."""

import email
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from notifications.services import deliver, notify
from tests.processes import free_port, smtp_peer

pytestmark = pytest.mark.django_db

GLUCOSE = {"metric": "Blood glucose", "message": "Blood glucose 48 mg/dL, below 54.", "alert_id": "a1"}
NEUTRAL = "OpenVitals: an urgent health alert needs your attention. Open the app."


@pytest.fixture
def smtp_settings(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.FRONTEND_URL = "https://app.openvitals.example"
    return settings


def email_of(notification):
    return notification.deliveries.get(channel="email")


def test_an_email_goes_through_a_real_smtp_server_with_the_neutral_subject_and_a_link(user, smtp_settings):
    with smtp_peer() as (port, messages):
        smtp_settings.EMAIL_PORT = port
        (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

        assert deliver(delivery_id=email_of(notification).pk) == "sent"

    ((recipients, raw),) = messages
    assert recipients == ["patient@example.org"]
    message = email.message_from_string(raw, policy=default_policy)
    assert message["Subject"] == NEUTRAL
    assert message["To"] == "patient@example.org"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert f"https://app.openvitals.example/notifications/{notification.pk}" in body
    text = raw.replace(str(notification.pk), "")  # a UUID may hold any digits
    assert "48 mg" not in text
    assert "glucose" not in text.lower()
    assert email_of(notification).sent_at is not None


def test_a_server_that_is_down_leaves_the_email_queued_for_a_retry(user, smtp_settings):
    smtp_settings.EMAIL_PORT = free_port()  # nothing listens: connection refused
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

    assert deliver(delivery_id=email_of(notification).pk) == "queued"

    delivery = email_of(notification)
    assert delivery.next_attempt_at > timezone.now()
    assert delivery.attempts == 1
    assert "ConnectionRefusedError" in delivery.last_error


def test_it_is_sent_when_the_server_is_back(user, smtp_settings):
    smtp_settings.EMAIL_PORT = free_port()
    (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)
    assert deliver(delivery_id=email_of(notification).pk) == "queued"

    with smtp_peer() as (port, messages):
        smtp_settings.EMAIL_PORT = port
        later = email_of(notification).next_attempt_at

        assert deliver(delivery_id=email_of(notification).pk, now=later) == "sent"

    assert len(messages) == 1


class _RefuseRecipients:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201, N802
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        return "250 OK"


def test_a_server_that_refuses_the_recipient_fails_the_email(user, smtp_settings):
    controller = Controller(_RefuseRecipients(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        smtp_settings.EMAIL_PORT = controller.port
        (notification,) = notify("health_alert_critical", patient=user, payload=GLUCOSE)

        assert deliver(delivery_id=email_of(notification).pk) == "failed"
    finally:
        controller.stop()

    delivery = email_of(notification)
    assert (delivery.status, delivery.reason, delivery.attempts) == ("failed", "address_refused", 1)
