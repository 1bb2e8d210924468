"""Channels: each a small backend behind one interface, `send(delivery) -> None`.

A backend raises `Retry` for an error that can recover (a timeout, a 5xx, a refused connection) and `GiveUp`
for one that cannot (no address, a token the provider says is dead); anything else is a bug and counts as a
retry. In-app needs no backend: the notification row is the message. Push, SMS and webhooks register here as
they land (issue #12 §3-4). Push speaks FCM HTTP v1 to FCM_ENDPOINT.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from typing import TYPE_CHECKING

import requests
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from . import kinds
from .models import Channel

if TYPE_CHECKING:
    from .models import Delivery


class Retry(Exception):
    """The send may work later."""


class GiveUp(Exception):
    """The send will never work: the delivery fails at once, with this reason."""


class NotSent(Exception):
    """Nothing to send to (no push device, a channel not configured): the delivery is `not_sent`, this reason."""


def send_email(delivery: Delivery) -> None:
    notification = delivery.notification
    if delivery.address:
        message = _emergency_contact_email(delivery)
    else:
        address = notification.recipient.email
        if not address:
            raise GiveUp("no_address")
        kind = kinds.get(notification.kind)
        link = f"{settings.FRONTEND_URL.rstrip('/')}/notifications/{notification.pk}"
        # The subject is a mail client's preview and a lock screen's: the neutral text, never a value.
        text = (
            f"{kind.neutral}\n\n{link}\n\nYou get these emails because of your notification preferences in OpenVitals."
        )
        message = EmailMultiAlternatives(
            subject=kind.neutral, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[address]
        )
    try:
        message.send()
    except (TimeoutError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, OSError) as exc:
        raise Retry(f"{type(exc).__name__}: {exc}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise GiveUp("address_refused") from exc


def _emergency_contact_email(delivery: Delivery) -> EmailMultiAlternatives:
    """To someone the patient named as an emergency contact: who, and a call to action; no value, no diagnosis."""
    patient = delivery.notification.recipient
    name = f"{patient.first_name} {patient.last_name}".strip() or patient.email
    text = (
        f"{name} named you as an emergency contact in OpenVitals and asked us to tell you when their account "
        "raises an urgent health alert. It has just done so.\n\n"
        f"Please get in touch with {patient.first_name or name} now. If you cannot reach them and are worried, "
        "call your local emergency number.\n\n"
        "We cannot share their health details with you. To stop these emails, ask them to turn off emergency "
        "contact alerts in the app."
    )
    return EmailMultiAlternatives(
        subject=f"OpenVitals: please check on {patient.first_name or name}",
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.address],
    )


def send_push(delivery: Delivery) -> None:
    """FCM HTTP v1, one request per registered device: the kind's neutral text, and ids for the app.

    A token FCM calls dead (UNREGISTERED, or an invalid argument naming the token) is deleted; 429 and 5xx
    are retried; sent when any device took it. APNs tokens wait for the APNs backend (not_sent).
    """
    from .models import PushDevice, PushPlatform

    notification = delivery.notification
    devices = list(PushDevice.objects.filter(user_id=notification.recipient_id))
    fcm = [device for device in devices if device.platform == PushPlatform.FCM]
    if not fcm:
        raise NotSent("no_push_device")
    if not settings.FCM_PROJECT_ID:
        raise NotSent("push_not_configured")
    kind = kinds.get(notification.kind)
    url = f"{settings.FCM_ENDPOINT.rstrip('/')}/v1/projects/{settings.FCM_PROJECT_ID}/messages:send"
    headers = {"Authorization": f"Bearer {settings.FCM_ACCESS_TOKEN}"}
    delivered, retry = [], None
    for device in fcm:
        message = {
            "token": device.token,
            "notification": {"title": "OpenVitals", "body": kind.neutral},
            "data": {"notification_id": str(notification.pk), "kind": notification.kind},
        }
        try:
            response = requests.post(url, json={"message": message}, headers=headers, timeout=10)
        except requests.RequestException as exc:
            retry = f"{type(exc).__name__}: {exc}"
            continue
        if response.ok:
            delivered.append(device.pk)
        elif _dead_token(response):
            device.delete()
        elif response.status_code == 429 or response.status_code >= 500:
            retry = f"FCM {response.status_code}: {response.text[:300]}"
        else:
            raise GiveUp(f"fcm_{response.status_code}")
    if delivered:
        PushDevice.objects.filter(pk__in=delivered).update(last_used_at=timezone.now())
        return
    if retry:
        raise Retry(retry)
    raise NotSent("no_push_device")  # every token was dead


def _dead_token(response: requests.Response) -> bool:
    try:
        error = response.json().get("error", {})
    except ValueError:
        return False
    codes = {detail.get("errorCode") for detail in error.get("details", []) if isinstance(detail, dict)}
    return "UNREGISTERED" in codes or (response.status_code == 404 and error.get("status") == "NOT_FOUND")


BACKENDS: dict[str, Callable[[Delivery], None]] = {
    Channel.EMAIL: send_email,
    Channel.PUSH: send_push,
}


def register(channel: str, backend: Callable[[Delivery], None]) -> None:
    BACKENDS[channel] = backend
