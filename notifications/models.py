"""Notifications: one row per person told something, one delivery row per channel (the outbox).

`notify()` (services.py) writes both in the caller's transaction; a worker sends each delivery after commit.
Unique keys make a retried or doubled event send once: (recipient, kind, dedupe_key) on notifications and
(notification, channel) on deliveries.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class Channel(models.TextChoices):
    IN_APP = "in_app", "In-app"
    EMAIL = "email", "Email"
    PUSH = "push", "Push"
    SMS = "sms", "SMS"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    NOT_SENT = "not_sent", "Not sent"


class NotificationQuerySet(models.QuerySet["Notification"]):
    def for_user(self, user) -> NotificationQuerySet:  # noqa: ANN001
        """A person's own inbox: nobody reads another's notifications (staff use the admin)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(recipient=user)

    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    """Something a person was told: what (kind, title, body), about whom (patient), and whether they read it.

    `title` and `body` are the in-app texts; channels that a lock screen or a mail subject shows (push, SMS,
    email subject) use the kind's neutral texts, which carry no health value (kinds.py).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    patient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Whose data the notification is about, if anyone's.",
    )
    kind = models.CharField(max_length=48)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.INFO)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True, help_text="Ids and links for the app; no health values.")
    dedupe_key = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "kind", "dedupe_key"],
                condition=~Q(dedupe_key=""),
                name="notification_once_per_event",
            )
        ]
        indexes = [
            # The inbox: a person's newest first, and the unread count.
            models.Index(fields=["recipient", "-created_at"], name="notification_inbox"),
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True), name="notification_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class Delivery(models.Model):
    """One channel's attempt to tell the recipient: status, attempts, the last error, when to try again.

    Claimed by a conditional update before sending (services.deliver), so two workers never both send it;
    retries are rows a beat job picks up when `next_attempt_at` passes, never long Celery countdowns.
    """

    id = models.BigAutoField(primary_key=True)
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    reason = models.CharField(max_length=64, blank=True, help_text="Why not sent: muted, quiet_hours, no_address.")
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["notification", "channel"], name="delivery_once_per_channel")]
        indexes = [
            # The sweeper: queued deliveries whose time has come.
            models.Index(fields=["next_attempt_at"], condition=Q(status="queued"), name="delivery_due")
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.status}"


class Preference(models.Model):
    """Whether a person wants a kind of notification on a channel (absent: the kind's default)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=48)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    enabled = models.BooleanField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind", "channel"], name="preference_once")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} {self.channel} {'on' if self.enabled else 'off'}"


class QuietHours(models.Model):
    """A person's quiet hours, in their profile's time zone: non-critical deliveries wait until they end."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="quiet_hours"
    )
    start = models.TimeField(help_text="Local time the quiet starts, e.g. 22:00.")
    end = models.TimeField(help_text="Local time it ends, e.g. 07:00 (the next day when before start).")

    class Meta:
        verbose_name_plural = "quiet hours"

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class PushPlatform(models.TextChoices):
    FCM = "fcm", "Firebase Cloud Messaging"
    APNS = "apns", "Apple Push Notification service"


class PushDeviceQuerySet(models.QuerySet["PushDevice"]):
    def for_user(self, user) -> PushDeviceQuerySet:  # noqa: ANN001
        if not user.is_authenticated:
            return self.none()
        return self.filter(user=user)


class PushDevice(models.Model):
    """A phone's push token. Deleted when the provider says it is dead (FCM UNREGISTERED, APNs 410) or after
    PUSH_DEVICE_IDLE_DAYS without use."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_devices")
    platform = models.CharField(max_length=8, choices=PushPlatform.choices)
    token = models.CharField(max_length=4096, unique=True)
    name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(auto_now_add=True)

    objects = PushDeviceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.platform} …{self.token[-6:]}"


# --- SMS: verified numbers only (issue #12 §3) ------------------------------------------------------------------


class VerifiedPhone(models.Model):
    """The number a person proved is theirs by a code sent to it (E.164). Texts go to it only while it equals
    their profile's phone: change the profile's phone and texts stop until the new one is verified."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="verified_phone"
    )
    number = models.CharField(max_length=16, help_text="E.164, e.g. +15551234567.")
    verified_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"…{self.number[-4:]}"


class PhoneChallenge(models.Model):
    """The one open code challenge of a person: a 6-digit code sent to `number`, kept only as an HMAC, good for
    PHONE_CODE_TTL and PHONE_CODE_MAX_ATTEMPTS tries; asking again replaces it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="phone_challenge"
    )
    number = models.CharField(max_length=16)
    code_hash = models.CharField(max_length=128)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"…{self.number[-4:]} until {self.expires_at:%H:%M}"
