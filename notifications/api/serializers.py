from __future__ import annotations

from datetime import UTC, datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import kinds
from ..models import Channel, Notification, PushDevice, WebhookDelivery, WebhookSubscription


class NotificationSerializer(serializers.ModelSerializer):
    is_read = serializers.BooleanField(read_only=True)
    patient = serializers.UUIDField(source="patient_id", read_only=True, allow_null=True)

    class Meta:
        model = Notification
        fields = ("id", "kind", "severity", "title", "body", "data", "patient", "is_read", "read_at", "created_at")
        read_only_fields = fields

    def to_representation(self, notification: Notification) -> dict:
        """The declared fields, built directly. Measured hot path: the inbox is the app's most read list
        (bench/notifications.py, inbox ÷ a bare `.values()` view)."""
        return {
            "id": str(notification.id),
            "kind": notification.kind,
            "severity": notification.severity,
            "title": notification.title,
            "body": notification.body,
            "data": notification.data,
            "patient": str(notification.patient_id) if notification.patient_id else None,
            "is_read": notification.read_at is not None,
            "read_at": _iso(notification.read_at),
            "created_at": _iso(notification.created_at),
        }


def _iso(moment: datetime | None) -> str | None:  # DRF's own format for UTC datetimes
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class NotificationUpdateSerializer(serializers.Serializer):
    is_read = serializers.BooleanField()


class UnreadCountSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


@extend_schema_field({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": "22:00"})
class ClockTimeField(serializers.TimeField):
    """A wall-clock time to the minute, `HH:MM` both ways (OpenAPI's `time` format wants an offset, which a
    local time has not)."""

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__(format="%H:%M", input_formats=["%H:%M", "%H:%M:%S"], **kwargs)

    def to_internal_value(self, value):  # noqa: ANN001, ANN201
        return super().to_internal_value(value).replace(second=0, microsecond=0)


class QuietHoursSerializer(serializers.Serializer):
    start = ClockTimeField(help_text="Local time, e.g. 22:00.")
    end = ClockTimeField(help_text="Local time, e.g. 07:00; before start means the next day.")

    def validate(self, attrs: dict) -> dict:
        if attrs["start"] == attrs["end"]:
            raise serializers.ValidationError({"end": "Must differ from start."})
        return attrs


class KindPreferenceSerializer(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()
    severity = serializers.CharField()
    mutable = serializers.BooleanField(help_text="False: a critical kind, which cannot be turned off.")
    channels = serializers.DictField(child=serializers.BooleanField(), help_text="Channel -> on.")


EMAIL_DIGEST_HELP = (
    "Low-severity (info) emails come as one daily digest (at 08:00 local time by default) instead of one by one."
)
EMERGENCY_CONTACTS_HELP = (
    "Email my emergency contacts (auth/profile/) when a critical health alert opens: who, and a call to check on me; "
    "never a value."
)


class PreferencesSerializer(serializers.Serializer):
    kinds = KindPreferenceSerializer(many=True)
    quiet_hours = QuietHoursSerializer(allow_null=True)
    email_digest = serializers.BooleanField(help_text=EMAIL_DIGEST_HELP)
    emergency_contacts = serializers.BooleanField(help_text=EMERGENCY_CONTACTS_HELP)


class PreferencesUpdateSerializer(serializers.Serializer):
    kinds = serializers.DictField(
        child=serializers.DictField(child=serializers.BooleanField()),
        required=False,
        help_text='{"health_alert": {"push": false, "email": true}}: kinds and channels to change; others stay.',
    )
    quiet_hours = QuietHoursSerializer(allow_null=True, required=False)
    email_digest = serializers.BooleanField(required=False, help_text=EMAIL_DIGEST_HELP)
    emergency_contacts = serializers.BooleanField(required=False, help_text=EMERGENCY_CONTACTS_HELP)

    def validate_kinds(self, value: dict) -> dict:
        for code, choices in value.items():
            if code not in kinds.KINDS:
                raise serializers.ValidationError(f"Unknown kind {code!r}. Valid kinds: {', '.join(kinds.KINDS)}.")
            kind = kinds.KINDS[code]
            for channel, enabled in choices.items():
                if channel not in kind.channels or channel == Channel.IN_APP:
                    valid = ", ".join(c for c in kind.channels if c != Channel.IN_APP)
                    raise serializers.ValidationError(f"{code} has no channel {channel!r}. Valid channels: {valid}.")
                if not enabled and not kind.mutable:
                    raise serializers.ValidationError(f"{code} is critical and cannot be turned off.")
        return value


class MessageSerializer(serializers.Serializer):
    patient = serializers.UUIDField(help_text="A patient whose active care-team grant names you.")
    text = serializers.CharField(max_length=2000, help_text="Shown in the patient's inbox; never in a push or email.")


class PushDeviceSerializer(serializers.ModelSerializer):
    token = serializers.CharField(
        write_only=True, max_length=4096, help_text="The FCM registration token or APNs device token."
    )
    token_end = serializers.SerializerMethodField(help_text="The token's last characters, to tell devices apart.")

    class Meta:
        model = PushDevice
        fields = ("id", "platform", "token", "token_end", "name", "created_at", "last_used_at")
        read_only_fields = ("id", "token_end", "created_at", "last_used_at")

    def get_token_end(self, device: PushDevice) -> str:
        return device.token[-6:]


def _kinds_help() -> str:
    return "Notification kinds to receive, e.g. health_alert_critical. Valid kinds: " + ", ".join(kinds.KINDS) + "."


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    """A subscription as answered: never its secret (that is answered once, on create and on rotation)."""

    owner = serializers.UUIDField(source="owner_id", read_only=True)
    organization = serializers.UUIDField(
        source="organization_id", read_only=True, allow_null=True, help_text="Null: a staff platform subscription."
    )
    kinds = serializers.ListField(child=serializers.CharField(), read_only=True)
    previous_secret_valid_until = serializers.DateTimeField(
        source="previous_valid_until",
        read_only=True,
        allow_null=True,
        help_text="Until then deliveries are signed with the previous secret too.",
    )

    class Meta:
        model = WebhookSubscription
        fields = (
            "id",
            "url",
            "kinds",
            "owner",
            "organization",
            "is_active",
            "disabled_at",
            "disabled_reason",
            "consecutive_failures",
            "previous_secret_valid_until",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret (whsec_...): shown this once; store it now."
    )

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = (*WebhookSubscriptionSerializer.Meta.fields, "secret")
        read_only_fields = fields


class WebhookSubscriptionWriteSerializer(serializers.Serializer):
    url = serializers.CharField(
        max_length=2000, help_text="https:// URL on a public address; it receives a signed POST per event."
    )
    kinds = serializers.ListField(child=serializers.CharField(max_length=48), min_length=1, help_text=_kinds_help())
    is_active = serializers.BooleanField(
        required=False, help_text="False: deliveries stop. True again: failures are forgotten."
    )


class WebhookSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new signing secret (whsec_...): shown this once.")
    previous_secret_valid_until = serializers.DateTimeField(
        help_text="The previous secret signs beside the new one until then."
    )


class WebhookDeliverySerializer(serializers.ModelSerializer):
    payload = serializers.JSONField(read_only=True, help_text="The body sent: ids and kinds only.")

    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "message_id",
            "kind",
            "status",
            "attempts",
            "next_attempt_at",
            "response_status",
            "last_error",
            "payload",
            "created_at",
            "sent_at",
        )
        read_only_fields = fields


# --- Phone verification (SMS to verified numbers only) ----------------------------------------------------------


class PhoneNumberField(serializers.CharField):
    """An E.164 number; spaces, dashes, dots and brackets are dropped first (`+1 555-123-4567`)."""

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("help_text", "E.164: `+` and the country code, e.g. +15551234567.")
        super().__init__(**kwargs)

    def to_internal_value(self, data):  # noqa: ANN001, ANN201
        from ..phones import E164, normalize

        number = normalize(super().to_internal_value(data))
        if not E164.match(number):
            raise serializers.ValidationError(
                "Not an E.164 number: a + and the country code, then 7 to 15 digits in all, e.g. +15551234567.",
                code="invalid_phone",
            )
        return number


class PhoneVerifySerializer(serializers.Serializer):
    phone = PhoneNumberField()


class PhoneConfirmSerializer(serializers.Serializer):
    phone = PhoneNumberField()
    code = serializers.RegexField(r"^[0-9]{6}$", help_text="The 6 digits sent to the phone.")


class PhoneCodeSentSerializer(serializers.Serializer):
    phone = serializers.CharField(help_text="The number the code went to, masked.")
    expires_at = serializers.DateTimeField()


class PhoneSerializer(serializers.Serializer):
    phone = serializers.CharField(allow_null=True, help_text="The verified number, masked (+1••••••4567); null: none.")
    verified_at = serializers.DateTimeField(allow_null=True)
    sms_active = serializers.BooleanField(
        help_text="Texts go to it: it is still the profile's phone. False after the profile's phone changed."
    )
