"""Channels: each a small backend behind one interface, `send(delivery) -> None`.

A backend raises `Retry` for an error that can recover (a timeout, a 5xx, a refused connection) and `GiveUp`
for one that cannot (no address, a token the provider says is dead); anything else is a bug and counts as a
retry. In-app needs no backend: the notification row is the message. Push, SMS and webhooks register here as
they land (issue #12 §3-4).
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from . import kinds
from .models import Channel

if TYPE_CHECKING:
    from .models import Delivery


class Retry(Exception):
    """The send may work later."""


class GiveUp(Exception):
    """The send will never work: the delivery fails at once, with this reason."""


def send_email(delivery: Delivery) -> None:
    notification = delivery.notification
    address = notification.recipient.email
    if not address:
        raise GiveUp("no_address")
    kind = kinds.get(notification.kind)
    link = f"{settings.FRONTEND_URL.rstrip('/')}/notifications/{notification.pk}"
    # The subject is a mail client's preview and a lock screen's: the neutral text, never a value.
    text = f"{kind.neutral}\n\n{link}\n\nYou get these emails because of your notification preferences in OpenVitals."
    message = EmailMultiAlternatives(
        subject=kind.neutral, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[address]
    )
    try:
        message.send()
    except (TimeoutError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, OSError) as exc:
        raise Retry(f"{type(exc).__name__}: {exc}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise GiveUp("address_refused") from exc


BACKENDS: dict[str, Callable[[Delivery], None]] = {
    Channel.EMAIL: send_email,
}


def register(channel: str, backend: Callable[[Delivery], None]) -> None:
    BACKENDS[channel] = backend
