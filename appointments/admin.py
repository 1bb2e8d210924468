"""The appointments admin. Staff set up every provider; a clinician sees and edits only their own booking settings
(hours, overrides, types). Appointments are read through the scoped patient-data admin: a clinician sees their
consented patients' (the appointments scope) and, acting as the provider, their own bookings (DESIGN §3).
"""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.admin import PatientDataAdmin
from accounts.models import Scope

from .models import Appointment, AppointmentEvent, AppointmentType, DateOverride, Provider, WorkingHours


def _own_provider(request: HttpRequest, provider: Provider | None) -> bool:
    """A clinician's own provider row (None: the list, or an inline asked without its parent)."""
    user = request.user
    return user.is_active and user.is_clinician and (provider is None or provider.pk == user.pk)


class OwnScheduleInline(admin.TabularInline):
    """A provider's hours, overrides or types: staff (by model permission), or the clinician on their own page."""

    extra = 0

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return _own_provider(request, obj) or super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return _own_provider(request, obj) or super().has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return _own_provider(request, obj) or super().has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return _own_provider(request, obj) or super().has_delete_permission(request, obj)


class AppointmentTypeInline(OwnScheduleInline):
    model = AppointmentType

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return admin.TabularInline.has_delete_permission(self, request, obj)  # bookings point at types: staff only


class WorkingHoursInline(OwnScheduleInline):
    model = WorkingHours


class DateOverrideInline(OwnScheduleInline):
    model = DateOverride


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    """Staff: every provider. A clinician: only their own row (its settings, hours, overrides and types); no
    other provider's page exists for them, and they neither add nor delete providers."""

    list_display = ("user", "timezone", "accepting", "slot_interval_minutes", "minimum_notice_minutes")
    list_filter = ("accepting",)
    search_fields = ("user__email", "user__last_name")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    inlines = [AppointmentTypeInline, WorkingHoursInline, DateOverrideInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.sees_all_patients:
            return queryset
        return queryset.filter(user=request.user)

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple:  # noqa: ANN001
        return ("user",) if not request.user.sees_all_patients else super().get_readonly_fields(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _own_provider(request, None) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return _own_provider(request, obj) or super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return _own_provider(request, obj) or super().has_change_permission(request, obj)


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

    def scoped(self, request: HttpRequest, queryset: QuerySet, *scope) -> QuerySet:  # noqa: ANN002
        """The patients the rule shows for the scope, and a clinician's own bookings as their provider."""
        scoped = super().scoped(request, queryset, *scope)
        if request.user.sees_all_patients or not request.user.is_clinician:
            return scoped
        return scoped | queryset.filter(provider=request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # bookings go through the one path that the database guards

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False
