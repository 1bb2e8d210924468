"""Notifications: one row per person told something, one delivery row per channel (the outbox).

`notify()` (services.py) writes both in the caller's transaction; a worker sends each delivery after commit.
Unique keys make a retried or doubled event send once: (recipient, kind, dedupe_key) on notifications and
(notification, channel) on deliveries.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
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
    IN_DIGEST = "digest", "Waiting for the daily digest"


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
    address = models.CharField(
        max_length=254, blank=True, help_text="Someone else than the recipient: an emergency contact's email address."
    )
    digest = models.ForeignKey(
        "Digest", on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries", editable=False
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel", "address"], name="delivery_once_per_channel")
        ]
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


class Digest(models.Model):
    """One email that gathers a person's low-severity notifications, sent once at their local digest hour.

    Deliveries waiting for it have status `digest`; the beat job claims the digest by a conditional update,
    so a job run twice (or two beats) sends it once.
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    due_at = models.DateTimeField(help_text="The person's next local digest hour (NOTIFICATION_DIGEST_HOUR).")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    reason = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-due_at"]
        constraints = [models.UniqueConstraint(fields=["user", "due_at"], name="digest_once_per_slot")]
        indexes = [models.Index(fields=["due_at"], condition=Q(status="queued"), name="digest_due")]

    def __str__(self) -> str:
        return f"digest for {self.user_id} at {self.due_at:%Y-%m-%d %H:%M}"


class Options(models.Model):
    """A person's choices beyond channels per kind: a daily digest, and emergency contacts on a critical alert."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="notification_options"
    )
    email_digest = models.BooleanField(
        default=False, help_text="Low-severity (info) emails come once a day as one digest instead of one by one."
    )
    emergency_contacts = models.BooleanField(
        default=False, help_text="Email my emergency contacts when a critical health alert opens (no values)."
    )

    class Meta:
        verbose_name = "notification options"
        verbose_name_plural = "notification options"

    def __str__(self) -> str:
        return f"options of {self.user_id}"


class EscalationPolicy(models.Model):
    """How long an organization lets a critical alert of a patient of its clinicians go unacknowledged, and
    which of its staff are on call for the last step."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, primary_key=True, related_name="escalation_policy"
    )
    minutes = models.PositiveSmallIntegerField(
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(1440)],
        help_text="Minutes before each escalation step.",
    )
    on_call = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="+",
        limit_choices_to={"role": "staff"},
        help_text="Staff told at the last step.",
    )

    class Meta:
        verbose_name_plural = "escalation policies"

    def __str__(self) -> str:
        return f"{self.minutes} min"


class EscalationStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"
    EXHAUSTED = "exhausted", "Every step taken"


class Escalation(models.Model):
    """A critical alert's clock: unacknowledged at `next_step_at`, it goes one step further (escalation.py)."""

    id = models.BigAutoField(primary_key=True)
    subject = models.CharField(max_length=200, unique=True, help_text="What is escalated, e.g. the alert's id.")
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=32)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=EscalationStatus.choices, default=EscalationStatus.OPEN)
    step = models.PositiveSmallIntegerField(default=0)
    next_step_at = models.DateTimeField(null=True, blank=True)
    steps = models.JSONField(default=list, blank=True, help_text="Each step taken: when, to whom.")
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["next_step_at"], condition=Q(status="open"), name="escalation_due")]

    def __str__(self) -> str:
        return f"{self.subject} ({self.status}, step {self.step})"


class WebhookSubscriptionQuerySet(models.QuerySet["WebhookSubscription"]):
    def for_user(self, user) -> WebhookSubscriptionQuerySet:  # noqa: ANN001
        """Staff: every subscription. A clinician of an organization: that organization's. Anyone else: none."""
        if not user.is_authenticated:
            return self.none()
        if user.sees_all_patients:
            return self.all()
        organization_id = webhook_organization_id(user)
        if organization_id is None:
            return self.none()
        return self.filter(organization_id=organization_id)

    def active(self) -> WebhookSubscriptionQuerySet:
        return self.filter(is_active=True)


def webhook_organization_id(user) -> uuid.UUID | None:  # noqa: ANN001
    """The organization a clinician's subscriptions belong to (None: not a clinician of one)."""
    if not user.is_authenticated or not user.is_clinician:
        return None
    profile = getattr(user, "clinician_profile", None)
    return profile.organization_id if profile is not None else None


class WebhookSubscription(models.Model):
    """A partner system's URL that receives signed event notices (Standard Webhooks) for some kinds.

    Owned by staff (organization null: a platform subscription, every event) or by a clinician for their
    organization (only events of patients whose active grant to one of its clinicians covers the event's
    scope). Secrets are stored encrypted (config/crypto.py); after a rotation the previous secret signs too
    until `previous_valid_until`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_subscriptions")
    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhook_subscriptions",
        help_text="Null: a staff-owned platform subscription, which receives every event.",
    )
    url = models.URLField(max_length=2000)
    kinds = models.JSONField(default=list, help_text="Notification kind codes this subscription receives.")
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WebhookSubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.url} ({'active' if self.is_active else 'disabled'})"


class WebhookDeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one subscription: the outbox row and the delivery log (attempts, answer, last error).

    Written by notify() in the caller's transaction; claimed by a conditional update before each attempt;
    retries are rows the sweeper hands on when `next_attempt_at` passes. `message_id` is the `webhook-id`
    header, the same on every attempt, so the receiver can drop a repeat.
    """

    id = models.BigAutoField(primary_key=True)
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    message_id = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=48)
    dedupe_key = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(help_text="The body sent: ids and kinds, never a health value or a name.")
    status = models.CharField(
        max_length=10, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "kind", "dedupe_key"],
                condition=~Q(dedupe_key=""),
                name="webhook_delivery_once_per_event",
            )
        ]
        indexes = [
            # The sweeper: queued webhook deliveries whose time has come.
            models.Index(fields=["next_attempt_at"], condition=Q(status="queued"), name="webhook_delivery_due"),
            # The log: a subscription's deliveries, newest first.
            models.Index(fields=["subscription", "-created_at"], name="webhook_delivery_log"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} {self.status}"


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
