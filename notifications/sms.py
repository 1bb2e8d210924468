"""Text messages through a pluggable backend (SMS_BACKEND), to a person's verified number only.

A backend is a class with `send(to, body)`: `to` an E.164 number, `body` the text. It raises `channels.Retry`
for an error that can recover (the provider's 429 or 5xx, a refused connection) and `channels.GiveUp` for one
that cannot (the provider's other 4xx).

- `LogBackend` (the default): one structured log line with the masked number and the text; nothing leaves
  the machine.
- `LocmemBackend` (tests): keeps each message in `LocmemBackend.outbox`, like Django's locmem mail backend.
- `HttpBackend`: Twilio's Messages REST API (POST To, From, Body with basic auth) at SMS_HTTP_ENDPOINT.

The text of a notification is its kind's neutral text and a link into the app: never a health value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

import requests
import structlog
from django.conf import settings
from django.utils.module_loading import import_string

from . import kinds
from .channels import GiveUp, NotSent, Retry

if TYPE_CHECKING:
    from .models import Delivery

logger = structlog.get_logger(__name__)


def mask(number: str) -> str:
    """`+15551234567` -> `+1••••••4567`: enough to tell numbers apart, not to dial one."""
    if len(number) <= 6:
        return "•" * len(number)
    return f"{number[:2]}{'•' * (len(number) - 6)}{number[-4:]}"


class Backend(Protocol):
    def send(self, to: str, body: str) -> None: ...


@dataclass(frozen=True)
class Message:
    to: str
    body: str


class LogBackend:
    """Writes the message to the log (number masked) instead of sending it: the default, safe anywhere."""

    def send(self, to: str, body: str) -> None:
        logger.info("sms_logged", to=mask(to), body=body, backend="log")


class LocmemBackend:
    """Keeps messages in memory for tests: `LocmemBackend.outbox` (empty it yourself between tests)."""

    outbox: ClassVar[list[Message]] = []

    def send(self, to: str, body: str) -> None:
        LocmemBackend.outbox.append(Message(to=to, body=body))


class HttpBackend:
    """Twilio's Messages API: `POST {SMS_HTTP_ENDPOINT}/2010-04-01/Accounts/{sid}/Messages.json`, a form of
    To, From and Body, basic auth with the account SID and auth token."""

    def send(self, to: str, body: str) -> None:
        sid = settings.SMS_ACCOUNT_SID
        if not (sid and settings.SMS_AUTH_TOKEN and settings.SMS_FROM):
            raise NotSent("sms_not_configured")
        url = f"{settings.SMS_HTTP_ENDPOINT.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        try:
            response = requests.post(
                url,
                data={"To": to, "From": settings.SMS_FROM, "Body": body},
                auth=(sid, settings.SMS_AUTH_TOKEN),
                timeout=10,
            )
        except requests.RequestException as exc:
            raise Retry(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise Retry(f"SMS provider {response.status_code}: {response.text[:300]}")
        if response.status_code >= 400:
            raise GiveUp(f"sms_{response.status_code}_{_error_code(response)}"[:64])


def _error_code(response: requests.Response) -> str:
    try:
        return str(response.json().get("code", ""))
    except (ValueError, AttributeError):
        return ""


def backend() -> Backend:
    return import_string(settings.SMS_BACKEND)()


def send_sms_delivery(delivery: Delivery) -> None:
    """The `sms` channel: the kind's neutral text and a link, to the recipient's verified number while it is
    still their profile's phone; otherwise not_sent (no_verified_phone)."""
    from .phones import sms_number

    notification = delivery.notification
    number = sms_number(notification.recipient)
    if number is None:
        raise NotSent("no_verified_phone")
    kind = kinds.get(notification.kind)
    link = f"{settings.FRONTEND_URL.rstrip('/')}/notifications/{notification.pk}"
    backend().send(number, f"{kind.neutral} {link}")
