"""Devices, their API keys, ingest batches and heartbeats."""

from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

from accounts.models import Scope, TimeStampedModel, User
from accounts.querysets import PatientOwnedQuerySet

from .configuration import validate_configuration
from .keys import SaltedSha256KeyGenerator


class DeviceType(models.TextChoices):
    SMARTWATCH = "smartwatch", "Smartwatch"
    FITNESS_TRACKER = "fitness_tracker", "Fitness tracker"
    BLOOD_PRESSURE_MONITOR = "blood_pressure_monitor", "Blood pressure monitor"
    GLUCOSE_METER = "glucose_meter", "Glucose meter"
    SCALE = "scale", "Scale"
    THERMOMETER = "thermometer", "Thermometer"
    PULSE_OXIMETER = "pulse_oximeter", "Pulse oximeter"
    ECG_MONITOR = "ecg_monitor", "ECG monitor"
    SLEEP_TRACKER = "sleep_tracker", "Sleep tracker"
    OTHER = "other", "Other"


class DeviceStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    ERROR = "error", "Error"
    MAINTENANCE = "maintenance", "Maintenance"


class OwnedQuerySet(PatientOwnedQuerySet):
    """Devices of a patient (`owner`), under the access rule's metrics scope."""

    patient_field = "owner"
    access_scope = Scope.METRICS


class Device(TimeStampedModel):
    """A patient's device that uploads readings with its own API key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices")
    name = models.CharField(max_length=100)
    device_type = models.CharField(max_length=32, choices=DeviceType.choices, default=DeviceType.OTHER)
    manufacturer = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    serial_number = models.CharField(max_length=100, blank=True)
    firmware_version = models.CharField(max_length=50, blank=True)
    supported_metric_types = models.JSONField(default=list, blank=True, help_text="Metric type codes.")
    status = models.CharField(max_length=16, choices=DeviceStatus.choices, default=DeviceStatus.ACTIVE)
    is_active = models.BooleanField(default=True, help_text="Off: the key is refused.")
    last_seen_at = models.DateTimeField(null=True, blank=True)
    battery_level = models.PositiveSmallIntegerField(null=True, blank=True)
    signal_strength = models.SmallIntegerField(null=True, blank=True, help_text="dBm.")
    configuration = models.JSONField(
        default=dict, blank=True, validators=[validate_configuration], help_text="Settings; see configuration.py."
    )
    # Where its readings are kept (made with the device); the readings stay with it if the device is deleted.
    data_source = models.OneToOneField("health_metrics.DataSource", on_delete=models.CASCADE, related_name="device")

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_device_type_display()})"


class DeviceAPIKeyManager(BaseAPIKeyManager):
    key_generator = SaltedSha256KeyGenerator()

    def get_usable_keys(self) -> models.QuerySet:
        return super().get_usable_keys().select_related("device")  # one query per request


class DeviceAPIKey(AbstractAPIKey):
    """The one live key of a device, hashed at rest; rotating replaces it."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, related_name="api_key")

    objects = DeviceAPIKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "device API key"
        verbose_name_plural = "device API keys"


class BatchStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    DONE = "done", "Done"
    PARTIAL = "partial", "Partial"
    FAILED = "failed", "Failed"


class IngestBatchQuerySet(models.QuerySet):
    def for_user(self, user: User) -> IngestBatchQuerySet:
        return self.filter(device__in=Device.objects.for_user(user))


class IngestBatch(models.Model):
    """One upload of readings from a device: stored at once, processed by a Celery task."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="batches")
    batch_id = models.CharField(max_length=100, help_text="The device's own id for the batch.")
    payload_sha256 = models.CharField(max_length=64)
    # The readings as canonical JSON (UTF-8), the bytes the digest is taken over: stored as bytes, not JSONB,
    # so a 10,000-reading upload is encoded once and PostgreSQL does not parse a megabyte it never queries.
    payload = models.BinaryField(help_text="The readings as sent, as canonical JSON (UTF-8).")
    reading_count = models.PositiveIntegerField()
    sent_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=BatchStatus.choices, default=BatchStatus.RECEIVED)
    attempts = models.PositiveSmallIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{index, code, detail, attr}]")
    failure_reason = models.TextField(
        blank=True, help_text="Why the last attempt crashed, until another starts; final once the batch is failed."
    )
    received_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = IngestBatchQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["device", "batch_id"], name="batch_unique_per_device"),
        ]
        indexes = [
            # The sweeper: batches left received, or stuck processing.
            models.Index(
                fields=["status", "received_at"],
                name="batch_status_idx",
                condition=Q(status__in=["received", "processing"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.device_id}:{self.batch_id} ({self.status})"

    @property
    def readings(self) -> list:
        """The payload decoded: the readings as the device sent them."""
        return json.loads(bytes(self.payload))


class DeviceAlertKind(models.TextChoices):
    OFFLINE = "offline", "Offline"
    LOW_BATTERY = "low_battery", "Low battery"
    REJECTED_READINGS = "rejected_readings", "Readings rejected"
    BATCH_FAILED = "batch_failed", "Batch failed"


class DeviceAlertQuerySet(models.QuerySet):
    def for_user(self, user: User) -> DeviceAlertQuerySet:
        return self.filter(device__in=Device.objects.for_user(user))


class DeviceAlert(models.Model):
    """One episode of a device problem: opened when it starts, resolved when it clears.

    A batch that failed after its last attempt is an alert of its own (`batch` set), one per batch.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="alerts")
    batch = models.ForeignKey(IngestBatch, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=24, choices=DeviceAlertKind.choices)
    message = models.CharField(max_length=255)
    opened_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = DeviceAlertQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "kind"],
                condition=Q(resolved_at__isnull=True, batch__isnull=True),
                name="device_alert_one_open_episode",
            ),
            models.UniqueConstraint(fields=["batch"], name="device_alert_one_per_batch"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.device_id}"
