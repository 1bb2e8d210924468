from __future__ import annotations

from django.contrib import admin

from accounts.admin import PatientDataAdmin
from accounts.models import Scope

from .models import Device, IngestBatch


@admin.register(Device)
class DeviceAdmin(PatientDataAdmin):
    patient_field = "owner"
    access_scope = Scope.METRICS
    list_display = ("name", "owner", "device_type", "status", "is_active", "last_seen_at", "battery_level")
    list_filter = ("device_type", "status", "is_active")
    search_fields = ("owner__email", "name", "serial_number")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)


@admin.register(IngestBatch)
class IngestBatchAdmin(PatientDataAdmin):
    """Read-only: a batch's history is what the device sent and what became of it."""

    patient_field = "device__owner"
    access_scope = Scope.METRICS
    list_display = (
        "received_at",
        "device",
        "batch_id",
        "status",
        "reading_count",
        "accepted",
        "duplicates",
        "rejected",
        "attempts",
    )
    list_filter = ("status", "received_at")
    search_fields = ("batch_id", "device__owner__email")
    list_select_related = ("device",)
    exclude = ("payload",)
    readonly_fields = [f.name for f in IngestBatch._meta.fields if f.name != "payload"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False
