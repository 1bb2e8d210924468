"""Staff see what was sent to whom, each channel's status and last error, and resend a failed delivery."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from .models import Delivery, DeliveryStatus, Notification, Preference, PushDevice, QuietHours, VerifiedPhone
from .services import enqueue
from .sms import mask


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ("channel", "status", "reason", "attempts", "last_error", "next_attempt_at", "sent_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "recipient", "kind", "severity", "title", "read_at")
    list_filter = ("kind", "severity", "created_at")
    search_fields = ("recipient__email", "kind", "dedupe_key")
    list_select_related = ("recipient",)
    raw_id_fields = ("recipient", "patient")
    readonly_fields = ("recipient", "patient", "kind", "severity", "title", "body", "data", "dedupe_key", "created_at")
    inlines = [DeliveryInline]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "notification", "channel", "status", "reason", "attempts", "sent_at")
    list_filter = ("channel", "status", "reason")
    search_fields = ("notification__recipient__email", "last_error")
    list_select_related = ("notification",)
    raw_id_fields = ("notification",)
    readonly_fields = (
        "notification",
        "channel",
        "status",
        "reason",
        "attempts",
        "last_error",
        "next_attempt_at",
        "claimed_at",
        "sent_at",
        "created_at",
    )
    actions = ["resend"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Send again (failed or not sent)")
    def resend(self, request: HttpRequest, queryset) -> None:  # noqa: ANN001
        retry = queryset.filter(status__in=[DeliveryStatus.FAILED, DeliveryStatus.NOT_SENT])
        ids = list(retry.values_list("pk", flat=True))
        retry.update(status=DeliveryStatus.QUEUED, reason="", next_attempt_at=timezone.now(), attempts=0)
        transaction.on_commit(lambda: enqueue(ids))
        messages.info(request, f"{len(ids)} deliveries queued again.")


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "channel", "enabled")
    list_filter = ("kind", "channel", "enabled")
    search_fields = ("user__email",)
    raw_id_fields = ("user",)


@admin.register(QuietHours)
class QuietHoursAdmin(admin.ModelAdmin):
    list_display = ("user", "start", "end")
    search_fields = ("user__email",)
    raw_id_fields = ("user",)


@admin.register(PushDevice)
class PushDeviceAdmin(admin.ModelAdmin):
    list_display = ("user", "platform", "name", "created_at", "last_used_at")
    list_filter = ("platform",)
    search_fields = ("user__email", "name")
    raw_id_fields = ("user",)
    exclude = ("token",)  # a live token sends to the phone: not shown


@admin.register(VerifiedPhone)
class VerifiedPhoneAdmin(admin.ModelAdmin):
    """Who has a verified number for texts, masked; codes (PhoneChallenge) are never shown anywhere."""

    list_display = ("user", "masked_number", "verified_at")
    search_fields = ("user__email",)
    raw_id_fields = ("user",)
    fields = ("user", "masked_number", "verified_at")
    readonly_fields = ("user", "masked_number", "verified_at")

    @admin.display(description="number")
    def masked_number(self, obj: VerifiedPhone) -> str:
        return mask(obj.number)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a number is verified by its owner's code, not by staff

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False
