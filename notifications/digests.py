"""The daily digest: one email instead of many for low-severity notifications, sent once at the local digest hour.

Two kinds of delivery wait for it (status `digest`, services._deliveries decides): the info-severity emails of
a person who turned `email_digest` on, and every non-critical email about a patient's data to a clinician told
through a care-team grant (a clinician with many patients gets a digest, not a storm; their push for those
waits for the digest too). Critical alerts never wait.

`next_digest_at` is pure (test it without the database). The beat job claims each due digest by a conditional
update (queued -> sending), so running it twice, or two overlapping beats, sends it once. The email names how
many notifications of each kind are unread, never a value; ones read in the app before the hour are left out,
and a digest with nothing unread is not sent.
"""

from __future__ import annotations

import logging
import smtplib
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import F
from django.utils import timezone

from accounts.models import Profile

from . import kinds
from .models import Delivery, DeliveryStatus, Digest
from .quiet import wall_clock

if TYPE_CHECKING:
    from .services import Outgoing

logger = logging.getLogger(__name__)

RETRY_DELAYS = (300, 1800, 7200)  # seconds between attempts of a digest whose mail server was away
STALE_CLAIM = timedelta(minutes=5)


def next_digest_at(now: datetime, zone: ZoneInfo, hour: int) -> datetime:
    """The first instant after `now` at which the wall clock in `zone` shows `hour`:00 (UTC, aware)."""
    local = now.astimezone(zone)
    at = time(hour=hour)
    candidate = wall_clock(local.date(), at, zone)
    if candidate <= now:
        candidate = wall_clock(local.date() + timedelta(days=1), at, zone)
    return candidate


def attach(rows: Iterable[Outgoing], *, now: datetime) -> None:
    """Point each delivery waiting for a digest at its recipient's next digest (made when missing): three
    queries however many rows."""
    waiting = [row for row in rows if row.status == DeliveryStatus.IN_DIGEST]
    if not waiting:
        return
    user_ids = {row.recipient_id for row in waiting}
    zones = dict(Profile.objects.filter(user_id__in=user_ids).values_list("user_id", "timezone"))
    due = {
        user_id: next_digest_at(now, ZoneInfo(zones.get(user_id) or "UTC"), settings.NOTIFICATION_DIGEST_HOUR)
        for user_id in user_ids
    }
    Digest.objects.bulk_create(
        [Digest(user_id=user_id, due_at=at) for user_id, at in due.items()], ignore_conflicts=True
    )
    ids = {
        (user_id, at): pk
        for pk, user_id, at in Digest.objects.filter(user_id__in=user_ids, due_at__in=set(due.values())).values_list(
            "pk", "user_id", "due_at"
        )
    }
    for row in waiting:
        user_id = row.recipient_id
        row.digest_id = ids[(user_id, due[user_id])]


def send_due_digests(*, now: datetime | None = None, limit: int = 500) -> int:
    """The beat job: send every digest whose hour has come; hand on ones a vanished worker claimed."""
    now = now or timezone.now()
    Digest.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=now - STALE_CLAIM).update(
        status=DeliveryStatus.QUEUED
    )
    due = list(
        Digest.objects.filter(status=DeliveryStatus.QUEUED, due_at__lte=now)
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(send_digest(digest_id=pk, now=now) == DeliveryStatus.SENT for pk in due)


def send_digest(*, digest_id: int, now: datetime | None = None) -> str | None:
    """Claim one digest and send it; a digest claimed or done elsewhere is left alone (None)."""
    now = now or timezone.now()
    claimed = Digest.objects.filter(pk=digest_id, status=DeliveryStatus.QUEUED, due_at__lte=now).update(
        status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    digest = Digest.objects.select_related("user").get(pk=digest_id)
    waiting = Delivery.objects.filter(digest=digest, status=DeliveryStatus.IN_DIGEST).select_related("notification")
    unread = [row for row in waiting if row.notification.read_at is None]
    read = [row.pk for row in waiting if row.notification.read_at is not None]
    Delivery.objects.filter(pk__in=read).update(status=DeliveryStatus.NOT_SENT, reason="read_in_app")
    if not unread or not digest.user.email:
        reason = "nothing_unread" if not unread else "no_address"
        _finish(digest, status=DeliveryStatus.NOT_SENT, reason=reason)
        Delivery.objects.filter(pk__in=[row.pk for row in unread]).update(status=DeliveryStatus.NOT_SENT, reason=reason)
        return DeliveryStatus.NOT_SENT
    try:
        _email(digest, unread)
    except (TimeoutError, smtplib.SMTPException, ConnectionError, OSError) as exc:
        if digest.attempts > len(RETRY_DELAYS):
            _finish(digest, status=DeliveryStatus.FAILED, reason="gave_up", last_error=repr(exc)[:2000])
            Delivery.objects.filter(pk__in=[row.pk for row in unread]).update(
                status=DeliveryStatus.FAILED, reason="digest_failed"
            )
            return DeliveryStatus.FAILED
        retry_at = now + timedelta(seconds=RETRY_DELAYS[digest.attempts - 1])
        _finish(digest, status=DeliveryStatus.QUEUED, due_at=retry_at, last_error=repr(exc)[:2000])
        return DeliveryStatus.QUEUED
    sent_at = timezone.now()
    _finish(digest, status=DeliveryStatus.SENT, sent_at=sent_at, reason="", last_error="")
    Delivery.objects.filter(pk__in=[row.pk for row in unread]).update(
        status=DeliveryStatus.SENT, reason="digest", sent_at=sent_at
    )
    return DeliveryStatus.SENT


def _finish(digest: Digest, **fields: object) -> None:
    Digest.objects.filter(pk=digest.pk, status=DeliveryStatus.SENDING).update(**fields)


def _email(digest: Digest, rows: list[Delivery]) -> None:
    counts = Counter(row.notification.kind for row in rows)
    lines = [f"- {kinds.get(code).label}: {count}" for code, count in sorted(counts.items())]
    link = f"{settings.FRONTEND_URL.rstrip('/')}/notifications"
    total = sum(counts.values())
    body = (
        f"You have {total} unread notification{'s' if total != 1 else ''} in OpenVitals:\n\n"
        + "\n".join(lines)
        + f"\n\nOpen the app to read them: {link}\n\n"
        "You get this summary once a day because of your notification preferences in OpenVitals."
    )
    EmailMessage(
        subject="OpenVitals: your daily summary",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[digest.user.email],
    ).send()
