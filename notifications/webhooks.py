"""Signed webhooks for partner systems (Standard Webhooks): subscriptions, fan-out from notify(), sending.

Fan-out (`queue_webhooks`, called by notify() in the caller's transaction: the outbox) writes one
WebhookDelivery per active subscription to the event's kind that may see it: a staff-owned subscription
(no organization) every event; an organization's only a patient's event whose patient has an active grant,
covering the event's scope, to one of that organization's clinicians. The body carries ids and kinds only.

Sending (`send_webhook_delivery`) claims the row by a conditional update, signs the body
(HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`; during a rotation with the new and the old
secret), posts it to the checked address (outbound.py), and records the answer: 2xx sent; 410 Gone turns
the subscription off at once; anything else is tried again on Svix's schedule, then failed. A subscription
whose deliveries keep failing is turned off and its owner told (`webhook_disabled`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import CareTeamGrant, User
from config import crypto
from config.sweeps import hand_on

from . import kinds as kind_registry
from .models import WebhookDelivery, WebhookDeliveryStatus, WebhookSubscription
from .outbound import UnsafeURL, check_url, post

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
# Svix's schedule: the first attempt at once, then these waits after each failed attempt (seconds).
RETRY_DELAYS = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
STALE_CLAIM = timedelta(minutes=2)  # well above the request timeout: a worker that claimed and vanished
# Ids from notify()'s payload that a webhook may carry; never names, texts or values.
ID_FIELDS = ("alert_id", "device_id", "object_id", "subscription_id")


# --- Secrets and signatures -----------------------------------------------------------------------------------------


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` over `{id}.{timestamp}.{body}`, keyed with the secret's decoded bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signing_secrets(subscription: WebhookSubscription, *, now: datetime | None = None) -> list[str]:
    """The current secret, and the previous one while its rotation window lasts."""
    now = now or timezone.now()
    found = [crypto.decrypt(subscription.secret_encrypted)]
    previous_valid = subscription.previous_valid_until is not None and subscription.previous_valid_until > now
    if subscription.previous_secret_encrypted and previous_valid:
        found.append(crypto.decrypt(subscription.previous_secret_encrypted))
    return found


def signed_headers(
    subscription: WebhookSubscription, message_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signatures = " ".join(sign(secret, message_id, timestamp, body) for secret in signing_secrets(subscription))
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": "OpenVitals-Webhooks/1",
    }


# --- Subscriptions --------------------------------------------------------------------------------------------------


def validate_kinds(codes: Iterable[str]) -> list[str]:
    codes = list(dict.fromkeys(codes))
    if not codes:
        raise ValidationError({"kinds": f"Name at least one kind. Valid kinds: {', '.join(kind_registry.KINDS)}."})
    unknown = [code for code in codes if code not in kind_registry.KINDS]
    if unknown:
        raise ValidationError({"kinds": f"Unknown kind {unknown[0]!r}. Valid kinds: {', '.join(kind_registry.KINDS)}."})
    return codes


def validate_url(url: str) -> str:
    try:
        check_url(url)
    except UnsafeURL as exc:
        raise ValidationError({"url": str(exc)}) from None
    return url


@transaction.atomic
def create_subscription(
    *, owner: User, organization_id: uuid.UUID | None, url: str, kinds: list[str], is_active: bool = True
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its secret, which is answered once and stored only encrypted."""
    secret = new_secret()
    subscription = WebhookSubscription.objects.create(
        owner=owner,
        organization_id=organization_id,
        url=validate_url(url),
        kinds=validate_kinds(kinds),
        secret_encrypted=crypto.encrypt(secret),
        is_active=is_active,
    )
    return subscription, secret


@transaction.atomic
def update_subscription(*, subscription: WebhookSubscription, **fields: Any) -> WebhookSubscription:
    """Change url, kinds or is_active; turning it on again clears the failures and the reason."""
    if "url" in fields:
        subscription.url = validate_url(fields["url"])
    if "kinds" in fields:
        subscription.kinds = validate_kinds(fields["kinds"])
    if "is_active" in fields:
        if fields["is_active"]:
            enable_subscription(subscription=subscription)
        else:
            subscription.is_active = False
            subscription.disabled_at = subscription.disabled_at or timezone.now()
            subscription.disabled_reason = "turned off by a user"
    subscription.save()
    return subscription


def enable_subscription(*, subscription: WebhookSubscription) -> None:
    subscription.is_active = True
    subscription.disabled_at = None
    subscription.disabled_reason = ""
    subscription.consecutive_failures = 0
    subscription.save()


@transaction.atomic
def rotate_secret(*, subscription: WebhookSubscription, now: datetime | None = None) -> str:
    """A new secret; the current one keeps signing beside it for WEBHOOK_SECRET_ROTATION_HOURS."""
    now = now or timezone.now()
    secret = new_secret()
    subscription.previous_secret_encrypted = subscription.secret_encrypted
    subscription.previous_valid_until = now + timedelta(hours=settings.WEBHOOK_SECRET_ROTATION_HOURS)
    subscription.secret_encrypted = crypto.encrypt(secret)
    subscription.save(
        update_fields=["secret_encrypted", "previous_secret_encrypted", "previous_valid_until", "updated_at"]
    )
    return secret


def disable_subscription(*, subscription_id: uuid.UUID, reason: str, now: datetime | None = None) -> bool:
    """Turn a subscription off (once) and tell its owner; answers whether this call turned it off."""
    from .services import notify  # services calls queue_webhooks from notify(): imported late

    now = now or timezone.now()
    with transaction.atomic():
        changed = WebhookSubscription.objects.filter(pk=subscription_id, is_active=True).update(
            is_active=False, disabled_at=now, disabled_reason=reason[:200]
        )
        if not changed:
            return False
        subscription = WebhookSubscription.objects.select_related("owner").get(pk=subscription_id)
        notify(
            "webhook_disabled",
            recipients=[subscription.owner],
            payload={"url": subscription.url, "reason": reason, "subscription_id": str(subscription.pk)},
            dedupe_key=f"webhook_disabled:{subscription.pk}:{now.isoformat()}",
        )
    logger.warning("webhook subscription %s disabled: %s", subscription_id, reason)
    return True


# --- Fan-out --------------------------------------------------------------------------------------------------------


def queue_webhooks(
    kind: str, *, patient: User | None, scope: str | None, payload: dict[str, Any], dedupe_key: str = ""
) -> list[int]:
    """One delivery per active subscription to `kind` that may see the event; sent after the caller commits."""
    subscriptions = WebhookSubscription.objects.active()
    if patient is None or scope is None:
        subscriptions = subscriptions.filter(organization__isnull=True)
    else:
        organizations = (
            CareTeamGrant.objects.active()
            .with_scope(scope)
            .filter(patient=patient, clinician__clinician_profile__organization__isnull=False)
            .values("clinician__clinician_profile__organization")
        )
        subscriptions = subscriptions.filter(Q(organization__isnull=True) | Q(organization__in=organizations))
    # `kinds` is a short JSON list; matched here so SQLite (the zero-setup demo) needs no JSON containment.
    matching = [subscription for subscription in subscriptions.only("id", "kinds") if kind in subscription.kinds]
    if not matching:
        return []
    now = timezone.now()
    data: dict[str, Any] = {"patient_id": str(patient.pk) if patient is not None else None, "notification_kind": kind}
    data.update({key: str(payload[key]) for key in ID_FIELDS if payload.get(key) is not None})
    body = {"type": kind, "timestamp": now.isoformat(), "data": data}
    rows = [
        WebhookDelivery(
            subscription_id=subscription.pk,
            message_id=f"msg_{uuid.uuid4().hex}",
            kind=kind,
            dedupe_key=dedupe_key,
            payload=body,
            next_attempt_at=now,
        )
        for subscription in matching
    ]
    with transaction.atomic():  # a savepoint: a doubled event racing this one loses cleanly
        WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=bool(dedupe_key))
    ids = list(
        WebhookDelivery.objects.filter(message_id__in=[row.message_id for row in rows]).values_list("pk", flat=True)
    )
    if ids:
        transaction.on_commit(lambda: enqueue_webhook_deliveries(ids))
    return ids


def enqueue_webhook_deliveries(delivery_ids: Iterable[int]) -> None:
    from .tasks import send_webhook_delivery_task

    hand_on(send_webhook_delivery_task, delivery_ids)  # a broker that is down leaves them queued for the sweeper


# --- Sending --------------------------------------------------------------------------------------------------------


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()


def send_webhook_delivery(*, delivery_id: int, now: datetime | None = None) -> str | None:
    """Try one delivery once: claim it (queued and due -> sending), post it, record how it went.

    A second call or worker finds it claimed or done and does nothing (answers None).
    """
    now = now or timezone.now()
    claimed = WebhookDelivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        pk=delivery_id,
        status=WebhookDeliveryStatus.QUEUED,
    ).update(status=WebhookDeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    subscription = delivery.subscription
    if not subscription.is_active:
        _record(delivery, status=WebhookDeliveryStatus.FAILED, last_error="the subscription is turned off")
        return WebhookDeliveryStatus.FAILED
    try:
        target = check_url(subscription.url)
    except UnsafeURL as exc:  # the host now resolves somewhere we never call: no retry
        return _failed_for_good(delivery, f"refused: {exc}", now=now)
    body = body_of(delivery)
    try:
        answer = post(target, body, signed_headers(subscription, delivery.message_id, body), timeout=_timeout())
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return _retry_or_fail(delivery, f"{type(exc).__name__}: {exc}", status=None, now=now)
    if 200 <= answer.status < 300:
        _record(
            delivery,
            status=WebhookDeliveryStatus.SENT,
            sent_at=timezone.now(),
            response_status=answer.status,
            last_error="",
        )
        WebhookSubscription.objects.filter(pk=subscription.pk, consecutive_failures__gt=0).update(
            consecutive_failures=0
        )
        return WebhookDeliveryStatus.SENT
    error = f"HTTP {answer.status}" + (" (redirects are not followed)" if 300 <= answer.status < 400 else "")
    error += f": {answer.excerpt}" if answer.excerpt else ""
    if answer.status == 410:
        _record(delivery, status=WebhookDeliveryStatus.FAILED, response_status=410, last_error=error[:500])
        disable_subscription(subscription_id=subscription.pk, reason="the endpoint answered 410 Gone", now=now)
        return WebhookDeliveryStatus.FAILED
    return _retry_or_fail(delivery, error, status=answer.status, now=now)


def _timeout() -> float:
    return float(getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 10.0))


def _record(delivery: WebhookDelivery, **fields: Any) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDeliveryStatus.SENDING).update(**fields)


def _retry_or_fail(delivery: WebhookDelivery, error: str, *, status: int | None, now: datetime) -> str:
    if delivery.attempts < MAX_ATTEMPTS:
        delay = timedelta(seconds=RETRY_DELAYS[delivery.attempts - 1])
        _record(
            delivery,
            status=WebhookDeliveryStatus.QUEUED,
            next_attempt_at=now + delay,
            response_status=status,
            last_error=error[:500],
        )
        return WebhookDeliveryStatus.QUEUED
    return _failed_for_good(
        delivery, error, now=now, status=status, exhausted=f"all {MAX_ATTEMPTS} attempts failed, the last: {error}"
    )


def _failed_for_good(
    delivery: WebhookDelivery, error: str, *, now: datetime, status: int | None = None, exhausted: str = ""
) -> str:
    """The delivery fails; the subscription is turned off when attempts ran out or too many failed in a row."""
    _record(delivery, status=WebhookDeliveryStatus.FAILED, response_status=status, last_error=error[:500])
    subscription_id = delivery.subscription_id
    WebhookSubscription.objects.filter(pk=subscription_id).update(consecutive_failures=F("consecutive_failures") + 1)
    failures = WebhookSubscription.objects.filter(pk=subscription_id).values_list("consecutive_failures", flat=True)
    if exhausted:
        disable_subscription(subscription_id=subscription_id, reason=exhausted[:200], now=now)
    elif failures and failures[0] >= settings.WEBHOOK_DISABLE_AFTER_FAILURES:
        reason = f"{failures[0]} deliveries in a row failed, the last: {error}"
        disable_subscription(subscription_id=subscription_id, reason=reason[:200], now=now)
    return WebhookDeliveryStatus.FAILED


def requeue_due_webhook_deliveries(*, now: datetime | None = None, limit: int = 1000) -> int:
    """The sweeper: hand on due retries and deliveries the broker never took, and free claims of dead workers."""
    now = now or timezone.now()
    WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.SENDING, claimed_at__lt=now - STALE_CLAIM).update(
        status=WebhookDeliveryStatus.QUEUED, next_attempt_at=now
    )
    due = list(
        WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.QUEUED, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    enqueue_webhook_deliveries(due)
    return len(due)
