"""A basic admin: staff set up providers; appointments are read through the scoped patient-data admin."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from accounts.admin import PatientDataAdmin
from accounts.models import Scope

from .models import Appointment, AppointmentEvent, AppointmentType, DateOverride, Provider, WorkingHours


class AppointmentTypeInline(admin.TabularInline):
    model = AppointmentType
    extra = 0


class WorkingHoursInline(admin.TabularInline):
    model = WorkingHours
    extra = 0


class DateOverrideInline(admin.TabularInline):
    model = DateOverride
    extra = 0


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ("user", "timezone", "accepting", "slot_interval_minutes", "minimum_notice_minutes")
    list_filter = ("accepting",)
    search_fields = ("user__email", "user__last_name")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    inlines = [AppointmentTypeInline, WorkingHoursInline, DateOverrideInline]


class AppointmentEventInline(admin.TabularInline):
    model = AppointmentEvent
    extra = 0
    fields = ("at", "actor", "from_status", "to_status", "note")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return request.user.is_active and (request.user.is_clinician or super().has_view_permission(request, obj))


@admin.register(Appointment)
class AppointmentAdmin(PatientDataAdmin):
    """Read-only: status changes go through the API's state machine (part 2 adds scoped admin actions)."""

    patient_field = "patient"
    access_scope = Scope.APPOINTMENTS
    list_display = ("starts_at", "patient", "provider", "status", "telemedicine")
    list_filter = ("status", "telemedicine")
    list_select_related = ("patient", "provider")
    raw_id_fields = ("patient", "provider", "booked_by", "status_changed_by", "rescheduled_from")
    date_hierarchy = "starts_at"
    inlines = [AppointmentEventInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # bookings go through the one path that the database guards

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False
