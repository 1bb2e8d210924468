"""The one way to tell people things: `notify(...)`, and the delivery of what it queued.

`notify` writes the notifications and one delivery row per channel in the caller's transaction (the outbox)
and hands the deliveries to a worker after commit; nothing is sent if the caller rolls back, and nothing is
lost if the broker is down (the sweeper finds queued rows). Recipients of a patient's event come from the
access rule: the patient, and every clinician whose active grant covers the event's scope.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from psycopg.errors import UniqueViolation
from psycopg.types.json import Jsonb

from accounts.models import CareTeamGrant, EmergencyContact, User
from accounts.selectors import user_timezone
from config.copy import copy_rows, next_ids
from config.sweeps import hand_on

from . import channels, digests, escalation, kinds
from .models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Notification,
    Options,
    Preference,
    QuietHours,
    Severity,
)
from .quiet import quiet_until
from .webhooks import queue_webhooks

# Backoff between attempts of a delivery that can recover (seconds): then give up.
RETRY_DELAYS = (60, 300, 1800, 7200)


def notify(
    kind: str,
    *,
    recipients: Iterable[User] = (),
    patient: User | None = None,
    scope: str | None = None,
    about: User | None = None,
    payload: dict[str, Any] | None = None,
    dedupe_key: str = "",
) -> list[Notification]:
    """Tell `recipients` (and, for a patient's event, the patient and the clinicians whose grant covers `scope`).

    `about` names whose data the notification concerns when that person is not told (a grant tells the clinician).

    Runs in the caller's transaction; deliveries are sent after it commits. A retried or doubled event with
    the same `dedupe_key` tells each recipient once. Answers the notifications written now.
    """
    spec = kinds.get(kind)
    payload = payload or {}
    queue_webhooks(kind, patient=patient or about, scope=scope, payload=payload, dedupe_key=dedupe_key)  # webhooks.py
    people = [user.pk for user in recipients]
    care_team: set = set()  # clinicians told because a grant covers the event: non-critical ones wait for a digest
    if patient is not None:
        people.append(patient.pk)
        if scope is not None:
            grants = CareTeamGrant.objects.active().with_scope(scope).filter(patient=patient)
            care_team = set(grants.values_list("clinician_id", flat=True)) - set(people)
            people += care_team
    people = list(dict.fromkeys(people))
    if dedupe_key and people:
        seen = set(
            Notification.objects.filter(recipient_id__in=people, kind=kind, dedupe_key=dedupe_key).values_list(
                "recipient_id", flat=True
            )
        )
        people = [person for person in people if person not in seen]
    if not people:
        return []
    now = timezone.now()
    # One event, one text: rendered once for everyone it tells.
    title, body = spec.render(spec.title, payload)[:200], spec.render(spec.body, payload)
    data = {key: value for key, value in payload.items() if key in ("alert_id", "device_id", "url", "object_id")}
    about_id = (patient or about).pk if (patient or about) is not None else None
    rows = [
        Notification(
            id=uuid.uuid4(),
            recipient_id=person,
            patient_id=about_id,
            kind=kind,
            severity=spec.severity,
            title=title,
            body=body,
            data=data,
            dedupe_key=dedupe_key,
            created_at=now,
        )
        for person in people
    ]
    with transaction.atomic():  # a savepoint: a doubled event racing this one loses cleanly
        created = _store_notifications(rows, dedupe=bool(dedupe_key))
        deliveries = _deliveries(spec, created, care_team=care_team)
        if spec.escalates and patient is not None and created:
            deliveries += _emergency_contacts(patient, created)
            escalation.open_escalation(
                subject=escalation.subject_for(kind, payload, dedupe_key),
                patient=patient,
                scope=scope or "",
                payload={key: payload[key] for key in ("metric", "message", "alert_id") if key in payload},
            )
        digests.attach(deliveries, now=now)
        ids = _store_deliveries(deliveries, now=now)
    if ids:
        transaction.on_commit(lambda: enqueue(ids))
    return created


# Fan-out to many people is measured (bench/notifications.py): from this many rows on PostgreSQL, notifications
# and deliveries are written with COPY instead of bulk_create (which builds and prepares every value again).
COPY_FROM = 50
NOTIFICATION_COLUMNS = (
    "id",
    "recipient_id",
    "patient_id",
    "kind",
    "severity",
    "title",
    "body",
    "data",
    "dedupe_key",
    "created_at",
)
DELIVERY_COLUMNS = (
    "id",
    "notification_id",
    "channel",
    "status",
    "reason",
    "address",
    "digest_id",
    "attempts",
    "last_error",
    "next_attempt_at",
    "created_at",
)


def _fast(count: int) -> bool:
    return connection.vendor == "postgresql" and count >= COPY_FROM


def _store_notifications(rows: list[Notification], *, dedupe: bool) -> list[Notification]:
    """Write the notifications; answers those that went in (a doubled event racing this one loses its rows)."""
    if _fast(len(rows)):
        try:
            with transaction.atomic():
                copy_rows(
                    Notification._meta.db_table,
                    NOTIFICATION_COLUMNS,
                    (
                        (r.id, r.recipient_id, r.patient_id, r.kind, r.severity, r.title, r.body, Jsonb(r.data))
                        + (r.dedupe_key, r.created_at)
                        for r in rows
                    ),
                )
        except UniqueViolation:  # a racing twin stored some: fall back to the path that skips them
            pass
        else:
            for row in rows:
                row._state.adding, row._state.db = False, "default"
            return rows
    created = Notification.objects.bulk_create(rows, ignore_conflicts=dedupe)
    if dedupe:  # with conflicts ignored, the ids made here that are stored are the rows that went in
        stored = set(Notification.objects.filter(pk__in=[row.pk for row in rows]).values_list("pk", flat=True))
        created = [row for row in rows if row.pk in stored]
    return created


@dataclass(slots=True)
class Outgoing:
    """A delivery row to write (plain, cheaper than a model instance when one event tells a thousand people)."""

    notification_id: uuid.UUID
    recipient_id: Any
    channel: str
    status: str = DeliveryStatus.QUEUED
    reason: str = ""
    address: str = ""
    digest_id: int | None = None


def _store_deliveries(rows: list[Outgoing], *, now: datetime) -> list[int]:
    """Write the delivery rows; answers the ids of those to send now."""
    if not rows:
        return []
    if _fast(len(rows)):
        ids = next_ids(Delivery._meta.db_table, len(rows))
        copy_rows(
            Delivery._meta.db_table,
            DELIVERY_COLUMNS,
            (
                (pk, r.notification_id, r.channel, r.status, r.reason, r.address, r.digest_id, 0, "", now, now)
                for pk, r in zip(ids, rows, strict=True)
            ),
        )
        return [pk for pk, r in zip(ids, rows, strict=True) if r.status == DeliveryStatus.QUEUED]
    made = Delivery.objects.bulk_create(
        Delivery(
            notification_id=r.notification_id,
            channel=r.channel,
            status=r.status,
            reason=r.reason,
            address=r.address,
            digest_id=r.digest_id,
            next_attempt_at=now,
        )
        for r in rows
    )
    return [delivery.pk for delivery in made if delivery.status == DeliveryStatus.QUEUED]


def _deliveries(spec: kinds.Kind, notifications: Sequence[Notification], *, care_team: set) -> list[Outgoing]:
    """One row per channel the kind uses and the person keeps on; muted ones are kept as `not_sent`.

    Non-critical emails wait for the daily digest (status `digest`) when they concern a patient whose grant told
    a clinician, or are low-severity and the person chose a digest; such a clinician's push waits with them.
    """
    if not notifications:
        return []
    user_ids = [n.recipient_id for n in notifications]
    choices = {
        (row.user_id, row.channel): row.enabled
        for row in Preference.objects.filter(user_id__in=user_ids, kind=spec.code)
    }
    digest_people = set(care_team) if spec.severity != Severity.CRITICAL else set()
    if spec.severity == Severity.INFO:
        digest_people |= set(
            Options.objects.filter(user_id__in=user_ids, email_digest=True).values_list("user_id", flat=True)
        )
    rows = []
    for notification in notifications:
        recipient = notification.recipient_id
        wanted_channels = spec.channels
        if recipient in digest_people and Channel.EMAIL not in wanted_channels:
            wanted_channels = (*wanted_channels, Channel.EMAIL)  # the digest is an email, whatever the kind's channels
        for channel in wanted_channels:
            if channel == Channel.IN_APP:
                continue  # the notification itself is the in-app message
            wanted = choices.get((recipient, channel), True) if choices else True
            status, reason = DeliveryStatus.QUEUED, ""
            if channel not in channels.BACKENDS:
                status, reason = DeliveryStatus.NOT_SENT, "channel_unavailable"
            elif not wanted and spec.mutable:
                status, reason = DeliveryStatus.NOT_SENT, "muted"
            elif recipient in digest_people:
                if channel == Channel.EMAIL:
                    status = DeliveryStatus.IN_DIGEST
                elif recipient in care_team:
                    status, reason = DeliveryStatus.NOT_SENT, "in_digest"
            rows.append(Outgoing(notification.pk, recipient, channel, status, reason))
    return rows


def _emergency_contacts(patient: User, notifications: Sequence[Notification]) -> list[Outgoing]:
    """For a patient who opted in: an email to each emergency contact with an address, on the patient's own
    notification (no value in it: a call to check on them)."""
    own = next((n for n in notifications if n.recipient_id == patient.pk), None)
    if own is None or not Options.objects.filter(user=patient, emergency_contacts=True).exists():
        return []
    addresses = EmergencyContact.objects.filter(profile__user=patient).exclude(email="").values_list("email", flat=True)
    return [
        Outgoing(own.pk, patient.pk, Channel.EMAIL, address=address)
        for address in dict.fromkeys(address.lower() for address in addresses)
    ]


def enqueue(delivery_ids: list[int]) -> None:
    from .tasks import deliver_task

    hand_on(deliver_task, delivery_ids)  # a broker that is down leaves them queued for the sweeper


def deliver(*, delivery_id: int, now: datetime | None = None) -> str | None:
    """Send one delivery once: claim it by a conditional update, then send, then record how it went.

    A second call, or a second worker, finds it claimed or done and does nothing. Non-critical deliveries
    inside the recipient's quiet hours go back to the queue until the window ends; critical ones break through.
    """
    now = now or timezone.now()
    claimed = Delivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), pk=delivery_id, status=DeliveryStatus.QUEUED
    ).update(status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("notification__recipient").get(pk=delivery_id)
    notification = delivery.notification
    if notification.severity != Severity.CRITICAL:
        window = QuietHours.objects.filter(user_id=notification.recipient_id).first()
        if window is not None:
            until = quiet_until(now, user_timezone(notification.recipient), window.start, window.end)
            if until is not None:
                _update(
                    delivery,
                    status=DeliveryStatus.QUEUED,
                    next_attempt_at=until,
                    reason="quiet_hours",
                    attempts=delivery.attempts - 1,
                )
                return DeliveryStatus.QUEUED
    backend = channels.BACKENDS.get(delivery.channel)
    if backend is None:
        _update(delivery, status=DeliveryStatus.NOT_SENT, reason="channel_unavailable")
        return DeliveryStatus.NOT_SENT
    try:
        backend(delivery)
    except channels.NotSent as exc:
        _update(delivery, status=DeliveryStatus.NOT_SENT, reason=str(exc)[:64])
        return DeliveryStatus.NOT_SENT
    except channels.GiveUp as exc:
        _update(delivery, status=DeliveryStatus.FAILED, reason=str(exc)[:64], last_error=str(exc))
        return DeliveryStatus.FAILED
    except Exception as exc:  # noqa: BLE001 - Retry, or a bug: either way try again later, then give up
        if delivery.attempts > len(RETRY_DELAYS):
            _update(delivery, status=DeliveryStatus.FAILED, reason="gave_up", last_error=repr(exc)[:2000])
            return DeliveryStatus.FAILED
        delay = timedelta(seconds=RETRY_DELAYS[delivery.attempts - 1])
        _update(delivery, status=DeliveryStatus.QUEUED, next_attempt_at=now + delay, last_error=repr(exc)[:2000])
        return DeliveryStatus.QUEUED
    _update(delivery, status=DeliveryStatus.SENT, sent_at=timezone.now(), reason="", last_error="")
    return DeliveryStatus.SENT


def _update(delivery: Delivery, **fields: Any) -> None:
    Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(**fields)


def requeue_due_deliveries(*, now: datetime | None = None, limit: int = 1000) -> int:
    """The sweeper: hand on queued deliveries whose time has come (a retry, the end of quiet hours, a broker
    that was down) and ones a vanished worker claimed. Sending claims each row, so doubling is harmless."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.NOTIFICATION_STALE_CLAIM_SECONDS)  # a vanished worker's claim
    Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=stale).update(
        status=DeliveryStatus.QUEUED, next_attempt_at=now
    )
    due = list(
        Delivery.objects.filter(status=DeliveryStatus.QUEUED, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    enqueue(due)
    return len(due)


def mark_read(*, notification: Notification, is_read: bool) -> Notification:
    notification.read_at = (notification.read_at or timezone.now()) if is_read else None
    notification.save(update_fields=["read_at"])
    return notification


def mark_all_read(*, user: User) -> int:
    return Notification.objects.for_user(user).unread().update(read_at=timezone.now())


def set_preferences(*, user: User, choices: Iterable[tuple[str, str, bool]]) -> None:
    """Save (kind, channel, enabled) choices; a kind that may not be muted cannot be turned off."""
    with transaction.atomic():
        for kind, channel, enabled in choices:
            Preference.objects.update_or_create(user=user, kind=kind, channel=channel, defaults={"enabled": enabled})


def purge_idle_push_devices(*, now: datetime | None = None) -> int:
    """Delete push tokens unused for PUSH_DEVICE_IDLE_DAYS (a phone long gone)."""
    from django.conf import settings

    from .models import PushDevice

    cutoff = (now or timezone.now()) - timedelta(days=settings.PUSH_DEVICE_IDLE_DAYS)
    return PushDevice.objects.filter(last_used_at__lt=cutoff).delete()[0]
