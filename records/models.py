"""The patient's record across domains: export jobs (the files a worker makes of a record)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

from health_metrics.models import PatientDataQuerySet


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    PDF = "pdf", "PDF report"
    FHIR = "fhir", "FHIR R4 Bundle (JSON)"


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"  # the file was deleted after EXPORT_RETENTION_HOURS


class ExportJob(models.Model):
    """A large export made by a worker; its file lands in the default storage (S3 when configured)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    start_date = models.DateField()
    end_date = models.DateField()
    metric_type = models.ForeignKey(
        "health_metrics.MetricType", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    file = models.FileField(upload_to="exports/%Y/%m/", blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    row_count = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker last took the job.")
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = PatientDataQuerySet.as_manager()

    class Meta:
        db_table = "health_metrics_exportjob"  # made there before exports moved to records
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.format} export of {self.user_id} ({self.status})"

    @property
    def expires_at(self) -> datetime | None:
        """When the file is deleted (EXPORT_RETENTION_HOURS after it was made); None while there is none."""
        if self.status != ExportStatus.DONE or self.finished_at is None:
            return None
        return self.finished_at + timedelta(hours=settings.EXPORT_RETENTION_HOURS)
