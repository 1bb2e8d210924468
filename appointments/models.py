"""Providers (a clinician's booking settings), their appointment types, hours and date overrides, and appointments.

The guard against double booking is in the database: on PostgreSQL an exclusion constraint over each active
appointment's blocked range (migration 0002), so two requests racing for one slot cannot both be stored.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Scope, TimeStampedModel, User, validate_timezone
from accounts.selectors import visible_patients

# The name of the exclusion constraint (migration 0002); services map its violation to 409 `slot_taken`.
NO_DOUBLE_BOOKING = "appointment_no_double_booking"


def validate_languages(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(code, str) and 0 < len(code) <= 16 for code in value):
        raise ValidationError('A list of language codes, e.g. ["en", "fr"].', code="invalid_languages")


class Provider(TimeStampedModel):
    """A clinician's booking settings; its id is the clinician's user id. Specialty and organization are theirs."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="provider")
    bio = models.TextField(blank=True)
    languages = models.JSONField(
        default=list, blank=True, validators=[validate_languages], help_text='Language codes, e.g. ["en", "fr"].'
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    buffer_before_minutes = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(240)])
    buffer_after_minutes = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(240)])
    minimum_notice_minutes = models.PositiveIntegerField(default=120, validators=[MaxValueValidator(60 * 24 * 30)])
    horizon_days = models.PositiveSmallIntegerField(
        default=60, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    slot_interval_minutes = models.PositiveSmallIntegerField(
        default=15, validators=[MinValueValidator(5), MaxValueValidator(240)]
    )
    accepting = models.BooleanField(default=True, help_text="Whether patients may book new appointments.")

    class Meta:
        ordering = ["user__last_name", "user__first_name"]
        constraints = [
            models.CheckConstraint(condition=Q(slot_interval_minutes__gte=5), name="provider_slot_interval_min"),
            models.CheckConstraint(condition=Q(horizon_days__gte=1), name="provider_horizon_min"),
        ]

    def __str__(self) -> str:
        return f"Provider {self.user}"

    def clean(self) -> None:
        if self.user_id is not None and not self.user.is_clinician:
            raise ValidationError({"user": "A provider is a clinician's account."}, code="not_a_clinician")


class AppointmentType(models.Model):
    """What a provider offers: a name, how long it lasts, and whether it is a video visit."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="appointment_types")
    name = models.CharField(max_length=100)
    duration_minutes = models.PositiveSmallIntegerField(validators=[MinValueValidator(5), MaxValueValidator(480)])
    telemedicine = models.BooleanField(default=False)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(duration_minutes__gte=5), name="appointmenttype_duration_min"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.duration_minutes} min)"


class WorkingHours(models.Model):
    """One weekly window of working time, in the provider's local wall time; several per weekday are allowed."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="working_hours")
    weekday = models.PositiveSmallIntegerField(
        validators=[MaxValueValidator(6)], help_text="0 = Monday … 6 = Sunday (Python's weekday())."
    )
    start = models.TimeField()
    end = models.TimeField()

    class Meta:
        verbose_name_plural = "working hours"
        ordering = ["weekday", "start"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="workinghours_end_after_start"),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="workinghours_weekday_range"),
        ]

    def __str__(self) -> str:
        return f"{self.weekday}: {self.start}-{self.end}"


class OverrideKind(models.TextChoices):
    UNAVAILABLE = "unavailable", "Unavailable"  # leave, a holiday: the whole day, or start-end only
    EXTRA = "extra", "Extra hours"


class DateOverride(models.Model):
    """A change to one local date's hours: unavailable (all day, or start-end) or extra hours (start-end)."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="date_overrides")
    date = models.DateField()
    kind = models.CharField(max_length=16, choices=OverrideKind.choices)
    start = models.TimeField(null=True, blank=True)
    end = models.TimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["date", "start"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(start__isnull=True, end__isnull=True) & Q(kind=OverrideKind.UNAVAILABLE))
                | Q(start__isnull=False, end__isnull=False, end__gt=models.F("start")),
                name="dateoverride_times",
            ),
        ]
        indexes = [
            # The availability loader: a provider's overrides within the requested dates.
            models.Index(fields=["provider", "date"], name="dateoverride_provider_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.kind}"


class AppointmentStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    CONFIRMED = "confirmed", "Confirmed"
    CHECKED_IN = "checked_in", "Checked in"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    NO_SHOW = "no_show", "No-show"
    RESCHEDULED = "rescheduled", "Rescheduled"


# The statuses that hold a provider's time: the exclusion constraint covers exactly these.
ACTIVE_STATUSES = (AppointmentStatus.REQUESTED, AppointmentStatus.CONFIRMED)


class AppointmentQuerySet(models.QuerySet["Appointment"]):
    def for_user(self, user: User) -> AppointmentQuerySet:
        """One's own appointments as patient or as provider, and those of patients whose grant covers appointments."""
        if not user.is_authenticated:
            return self.none()
        mine = Q(patient=user) | Q(provider=user)
        if user.is_clinician or user.sees_all_patients:
            mine |= Q(patient__in=visible_patients(user, Scope.APPOINTMENTS))
        return self.filter(mine)

    def active(self) -> AppointmentQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)


class Appointment(TimeStampedModel):
    """A patient's booking of a provider's time; `blocked_start`-`blocked_end` is that time with the buffers."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(User, on_delete=models.CASCADE, related_name="appointments")
    provider = models.ForeignKey(User, on_delete=models.CASCADE, related_name="provider_appointments")
    appointment_type = models.ForeignKey(AppointmentType, on_delete=models.PROTECT, related_name="appointments")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    blocked_start = models.DateTimeField()
    blocked_end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=AppointmentStatus.choices, default=AppointmentStatus.REQUESTED)
    reason = models.TextField(blank=True)
    telemedicine = models.BooleanField(default=False)
    video_link = models.URLField(max_length=500, blank=True)
    booked_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    status_changed_at = models.DateTimeField(default=timezone.now)
    status_changed_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Clinical fields: written by the provider only.
    notes = models.TextField(blank=True)
    diagnosis = models.TextField(blank=True)
    plan = models.TextField(blank=True)
    rescheduled_from = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="rescheduled_to"
    )

    objects = AppointmentQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="appointment_ends_after_start"),
            models.CheckConstraint(
                condition=Q(blocked_start__lte=models.F("starts_at"), blocked_end__gte=models.F("ends_at")),
                name="appointment_blocked_covers_visit",
            ),
            models.CheckConstraint(condition=~Q(patient=models.F("provider")), name="appointment_not_with_self"),
        ]
        indexes = [
            # The availability loader and the SQLite overlap check: a provider's active bookings in a range.
            models.Index(fields=["provider", "blocked_start"], name="appointment_provider_block_idx"),
            # A patient's appointments, newest first (the list).
            models.Index(fields=["patient", "-starts_at"], name="appointment_patient_start_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.patient} with {self.provider} at {self.starts_at:%Y-%m-%d %H:%M} ({self.status})"


class AppointmentEvent(models.Model):
    """One status change of an appointment: from what to what, by whom, when."""

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    from_status = models.CharField(max_length=16, choices=AppointmentStatus.choices, null=True, blank=True)  # noqa: DJ001 (null: the booking itself)
    to_status = models.CharField(max_length=16, choices=AppointmentStatus.choices)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or 'booked'} → {self.to_status}"


# --- Reminders and the calendar feed (issue #13 §3) -------------------------------------------------------------


class Reminder(models.Model):
    """One reminder of an appointment at one offset before its start; inserting the row is the claim, so it is sent
    once however many beats run (appointments/reminders.py). `skipped`: claimed but not sent (a shorter one was due)."""

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="reminders")
    offset_minutes = models.PositiveIntegerField()
    skipped = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["appointment", "offset_minutes"], name="reminder_once_per_offset"),
        ]

    def __str__(self) -> str:
        return f"{self.offset_minutes} min before {self.appointment_id}"


class CalendarFeed(TimeStampedModel):
    """A person's iCalendar feed: only the SHA-256 of its secret token is stored; rotating replaces it."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="calendar_feed")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)  # the unique index is the feed's lookup

    def __str__(self) -> str:
        return f"Calendar feed of {self.user_id}"
