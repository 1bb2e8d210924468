"""Channels: each a small backend behind one interface, `send(delivery) -> None`.

A backend raises `Retry` for an error that can recover (a timeout, a 5xx, a refused connection) and `GiveUp`
for one that cannot (no address, a token the provider says is dead); anything else is a bug and counts as a
retry. In-app needs no backend: the notification row is the message. Push, SMS and webhooks register here as
they land (issue #12 §3-4). Push speaks FCM HTTP v1 to FCM_ENDPOINT and APNs (apns.py) to APNS_ENDPOINT; SMS goes
through the SMS_BACKEND (sms.py), to a verified number only.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import requests
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from . import apns, kinds
from .models import Channel, Severity

if TYPE_CHECKING:
    from .models import Delivery, Notification, PushDevice


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
    except smtplib.SMTPRecipientsRefused as exc:  # first: smtplib's errors are OSErrors, which are retried
        raise GiveUp("address_refused") from exc
    except (TimeoutError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, OSError) as exc:
        raise Retry(f"{type(exc).__name__}: {exc}") from exc


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
    """One push per registered device: FCM HTTP v1 for `fcm` devices, APNs (apns.py) for `apns` ones; the kind's
    neutral text, and ids for the app.

    A token the provider calls dead (FCM UNREGISTERED or an invalid argument naming it; APNs 410, BadDeviceToken,
    DeviceTokenNotForTopic) is deleted; 429 and 5xx are retried; sent when any device took it. A platform not
    configured leaves its devices out (not_sent push_not_configured when no device is left).
    """
    from .models import PushDevice, PushPlatform

    notification = delivery.notification
    devices = list(PushDevice.objects.filter(user_id=notification.recipient_id))
    if not devices:
        raise NotSent("no_push_device")
    kind = kinds.get(notification.kind)
    tally = _PushTally()
    fcm = [device for device in devices if device.platform == PushPlatform.FCM]
    apple = [device for device in devices if device.platform == PushPlatform.APNS]
    for platform_devices, is_configured, send in (
        (fcm, bool(settings.FCM_PROJECT_ID), _send_fcm),
        (apple, apns.configured(), _send_apns),
    ):
        if not platform_devices:
            continue
        if not is_configured:
            tally.not_configured = True
            continue
        send(notification, kind, platform_devices, tally)
    if tally.delivered:
        PushDevice.objects.filter(pk__in=tally.delivered).update(last_used_at=timezone.now())
        return
    if tally.retry:
        raise Retry(tally.retry)
    if tally.give_up:
        raise GiveUp(tally.give_up)
    if tally.not_configured:
        raise NotSent("push_not_configured")
    raise NotSent("no_push_device")  # every token was dead


@dataclass
class _PushTally:
    delivered: list = field(default_factory=list)
    retry: str = ""
    give_up: str = ""
    not_configured: bool = False


def _send_fcm(notification: Notification, kind: kinds.Kind, devices: list[PushDevice], tally: _PushTally) -> None:
    url = f"{settings.FCM_ENDPOINT.rstrip('/')}/v1/projects/{settings.FCM_PROJECT_ID}/messages:send"
    headers = {"Authorization": f"Bearer {settings.FCM_ACCESS_TOKEN}"}
    for device in devices:
        message = {
            "token": device.token,
            "notification": {"title": "OpenVitals", "body": kind.neutral},
            "data": {"notification_id": str(notification.pk), "kind": notification.kind},
        }
        try:
            response = requests.post(url, json={"message": message}, headers=headers, timeout=10)
        except requests.RequestException as exc:
            tally.retry = f"{type(exc).__name__}: {exc}"
            continue
        if response.ok:
            tally.delivered.append(device.pk)
        elif _dead_token(response):
            device.delete()
        elif response.status_code == 429 or response.status_code >= 500:
            tally.retry = f"FCM {response.status_code}: {response.text[:300]}"
        else:
            tally.give_up = f"fcm_{response.status_code}"


def _send_apns(notification: Notification, kind: kinds.Kind, devices: list[PushDevice], tally: _PushTally) -> None:
    payload = {
        "aps": {"alert": {"title": "OpenVitals", "body": kind.neutral}, "sound": "default"},
        "notification_id": str(notification.pk),
        "kind": notification.kind,
    }
    for device in devices:
        answer = apns.send(
            token=device.token,
            payload=payload,
            collapse_id=str(notification.pk),
            critical=notification.severity == Severity.CRITICAL,
        )
        if answer.outcome == "ok":
            tally.delivered.append(device.pk)
        elif answer.outcome == "dead":
            device.delete()
        elif answer.outcome == "retry":
            tally.retry = answer.detail
        else:
            tally.give_up = answer.detail[:64]


def _dead_token(response: requests.Response) -> bool:
    try:
        error = response.json().get("error", {})
    except ValueError:
        return False
    codes = {detail.get("errorCode") for detail in error.get("details", []) if isinstance(detail, dict)}
    return "UNREGISTERED" in codes or (response.status_code == 404 and error.get("status") == "NOT_FOUND")


def send_sms(delivery: Delivery) -> None:
    from .sms import send_sms_delivery

    send_sms_delivery(delivery)


BACKENDS: dict[str, Callable[[Delivery], None]] = {
    Channel.EMAIL: send_email,
    Channel.PUSH: send_push,
    Channel.SMS: send_sms,
}


def register(channel: str, backend: Callable[[Delivery], None]) -> None:
    BACKENDS[channel] = backend
