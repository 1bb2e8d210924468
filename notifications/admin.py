"""Staff see what was sent to whom, each channel's status and last error, and resend a failed delivery."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from .models import (
    Delivery,
    DeliveryStatus,
    Digest,
    Escalation,
    EscalationPolicy,
    Notification,
    Options,
    Preference,
    PushDevice,
    QuietHours,
    VerifiedPhone,
    WebhookDelivery,
    WebhookSubscription,
)
from .services import enqueue
from .sms import mask
from .webhooks import disable_subscription, enable_subscription


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ("channel", "address", "status", "reason", "attempts", "last_error", "next_attempt_at", "sent_at")
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
        "address",
        "digest",
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


@admin.register(Options)
class OptionsAdmin(admin.ModelAdmin):
    list_display = ("user", "email_digest", "emergency_contacts")
    list_filter = ("email_digest", "emergency_contacts")
    search_fields = ("user__email",)
    raw_id_fields = ("user",)


class DigestDeliveryInline(admin.TabularInline):
    model = Delivery
    fk_name = "digest"
    fields = ("notification", "status", "reason", "sent_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    list_display = ("due_at", "user", "status", "reason", "attempts", "sent_at")
    list_filter = ("status",)
    search_fields = ("user__email",)
    list_select_related = ("user",)
    readonly_fields = ("user", "due_at", "status", "reason", "attempts", "last_error", "claimed_at", "sent_at")
    inlines = [DigestDeliveryInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    """Per organization: minutes before each escalation step, and the staff on call for the last one."""

    list_display = ("organization", "minutes")
    search_fields = ("organization__name",)
    filter_horizontal = ("on_call",)


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin):
    """Critical alerts' escalations: each step taken (when, to whom), and who closed it."""

    list_display = ("created_at", "subject", "patient", "status", "step", "next_step_at", "closed_by")
    list_filter = ("status", "step")
    search_fields = ("subject", "patient__email")
    list_select_related = ("patient", "closed_by")
    readonly_fields = (
        "subject",
        "patient",
        "scope",
        "payload",
        "status",
        "step",
        "next_step_at",
        "steps",
        "closed_at",
        "closed_by",
        "created_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


WEBHOOK_DELIVERY_FIELDS = (
    "message_id",
    "kind",
    "status",
    "attempts",
    "response_status",
    "last_error",
    "next_attempt_at",
    "sent_at",
    "created_at",
)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    """Secrets are never shown: they are not fields of this form (stored encrypted, answered once by the API)."""

    list_display = ("url", "owner", "organization", "is_active", "consecutive_failures", "disabled_at", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "owner__email", "organization__name")
    list_select_related = ("owner", "organization")
    raw_id_fields = ("owner", "organization")
    fields = (
        "owner",
        "organization",
        "url",
        "kinds",
        "is_active",
        "disabled_at",
        "disabled_reason",
        "consecutive_failures",
        "previous_valid_until",
        "created_at",
        "updated_at",
        "delivery_log",
    )
    readonly_fields = fields  # changed through the API (the URL is checked there) and the actions below
    actions = ["enable", "disable"]

    @admin.display(description="Deliveries")
    def delivery_log(self, obj: WebhookSubscription) -> str:
        url = reverse("admin:notifications_webhookdelivery_changelist") + f"?subscription__id__exact={obj.pk}"
        return format_html('<a href="{}">{} deliveries</a>', url, obj.deliveries.count())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made through the API, which answers the secret once

    @admin.action(description="Turn on again (forget failures)")
    def enable(self, request: HttpRequest, queryset) -> None:  # noqa: ANN001
        for subscription in queryset:
            enable_subscription(subscription=subscription)
        messages.info(request, f"{len(queryset)} subscriptions turned on.")

    @admin.action(description="Turn off (the owner is told)")
    def disable(self, request: HttpRequest, queryset) -> None:  # noqa: ANN001
        count = sum(
            disable_subscription(subscription_id=pk, reason=f"turned off by staff ({request.user})")
            for pk in queryset.values_list("pk", flat=True)
        )
        messages.info(request, f"{count} subscriptions turned off.")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "subscription", "kind", "status", "attempts", "response_status", "sent_at")
    list_filter = ("status", "kind")
    search_fields = ("message_id", "subscription__url")
    list_select_related = ("subscription",)
    raw_id_fields = ("subscription",)
    readonly_fields = ("subscription", *WEBHOOK_DELIVERY_FIELDS, "claimed_at", "dedupe_key", "payload")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


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
