"""The inbox (`notifications/`), preferences, push devices and the verified phone (`notifications/phone/`): a
person's own only."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils.decorators import method_decorator
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.api.base import OwnedViewSet, log_patient_access
from accounts.models import AccessAction
from accounts.selectors import visible_patients
from config.filters import FilterSet
from config.throttling import throttle_cache

from .. import kinds, phones
from ..channels import GiveUp, NotSent, Retry
from ..models import Notification, Options, PhoneChallenge, Preference, PushDevice, QuietHours, VerifiedPhone
from ..services import mark_all_read, mark_read, notify, set_preferences
from ..sms import mask
from .serializers import (
    MessageSerializer,
    NotificationSerializer,
    NotificationUpdateSerializer,
    PhoneCodeSentSerializer,
    PhoneConfirmSerializer,
    PhoneSerializer,
    PhoneVerifySerializer,
    PreferencesSerializer,
    PreferencesUpdateSerializer,
    PushDeviceSerializer,
    UnreadCountSerializer,
)


class NotificationFilterSet(FilterSet):
    kind = filters.ChoiceFilter(choices=lambda: [(code, kind.label) for code, kind in kinds.KINDS.items()])
    is_read = filters.BooleanFilter(field_name="read_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Notification
        fields = ["kind", "is_read"]


@extend_schema(tags=["notifications"])
class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedViewSet):
    """The signed-in person's inbox, newest first. Nobody else's: no grant reaches another person's inbox."""

    model = Notification
    patient_field = "recipient"
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilterSet
    http_method_names = ["get", "patch", "post", "head", "options"]

    @extend_schema(request=NotificationUpdateSerializer, responses={200: NotificationSerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """`{is_read: true}` marks one read (`false`: unread again)."""
        notification = self.get_object()
        update = NotificationUpdateSerializer(data=request.data)
        update.is_valid(raise_exception=True)
        mark_read(notification=notification, is_read=update.validated_data["is_read"])
        return Response(NotificationSerializer(notification).data)

    @extend_schema(responses={200: UnreadCountSerializer})
    @action(detail=False, url_path="unread-count", pagination_class=None, filter_backends=[])
    def unread_count(self, request: Request) -> Response:
        """How many are unread (the app's badge)."""
        return Response({"unread": self.get_queryset().unread().count()})

    @extend_schema(request=None, responses={200: UnreadCountSerializer})
    @action(detail=False, methods=["post"], url_path="mark-all-read", pagination_class=None, filter_backends=[])
    def mark_all_read(self, request: Request) -> Response:
        """Mark every notification read; answers the unread count (0)."""
        mark_all_read(user=request.user)
        return Response({"unread": 0})


@extend_schema(tags=["notifications"])
class PreferencesView(APIView):
    """Per kind and channel, on or off; and quiet hours in the profile's time zone."""

    @extend_schema(responses={200: PreferencesSerializer})
    def get(self, request: Request) -> Response:
        """Every kind with its channels as they stand for the signed-in person, and their quiet hours."""
        return Response(self.current(request.user))

    @extend_schema(request=PreferencesUpdateSerializer, responses={200: PreferencesSerializer})
    def put(self, request: Request) -> Response:
        """Set channels per kind (a critical kind cannot be muted: 400), quiet hours (null: none), the daily
        digest and emergency-contact alerts; fields left out stay as they are."""
        update = PreferencesUpdateSerializer(data=request.data)
        update.is_valid(raise_exception=True)
        data = update.validated_data
        with transaction.atomic():
            set_preferences(
                user=request.user,
                choices=[
                    (kind, channel, enabled)
                    for kind, channels in data.get("kinds", {}).items()
                    for channel, enabled in channels.items()
                ],
            )
            if "quiet_hours" in data:
                window = data["quiet_hours"]
                if window is None:
                    QuietHours.objects.filter(user=request.user).delete()
                else:
                    QuietHours.objects.update_or_create(user=request.user, defaults=window)
            options = {field: data[field] for field in ("email_digest", "emergency_contacts") if field in data}
            if options:
                Options.objects.update_or_create(user=request.user, defaults=options)
        return Response(self.current(request.user), status=status.HTTP_200_OK)

    @staticmethod
    def current(user) -> dict:  # noqa: ANN001
        chosen = {(p.kind, p.channel): p.enabled for p in Preference.objects.filter(user=user)}
        window = QuietHours.objects.filter(user=user).first()
        options = Options.objects.filter(user=user).first() or Options(user=user)
        return {
            "kinds": [
                {
                    "kind": kind.code,
                    "label": kind.label,
                    "severity": kind.severity,
                    "mutable": kind.mutable,
                    "channels": {
                        channel: chosen.get((kind.code, channel), True) if kind.mutable else True
                        for channel in kind.channels
                    },
                }
                for kind in kinds.KINDS.values()
            ],
            "quiet_hours": None if window is None else {"start": f"{window.start:%H:%M}", "end": f"{window.end:%H:%M}"},
            "email_digest": options.email_digest,
            "emergency_contacts": options.emergency_contacts,
        }


@extend_schema(tags=["notifications"])
class MessageView(APIView):
    """A clinician's message to a consented patient: it lands in the patient's inbox and channels."""

    @extend_schema(request=MessageSerializer, responses={201: NotificationSerializer})
    def post(self, request: Request) -> Response:
        """Send a message; a patient without your active grant (or yourself) is 404."""
        message = MessageSerializer(data=request.data)
        message.is_valid(raise_exception=True)
        patient = visible_patients(request.user).filter(pk=message.validated_data["patient"]).first()
        if patient is None or patient.pk == request.user.pk:
            raise NotFound("No such patient.")
        sender = f"{request.user.first_name} {request.user.last_name}".strip() or request.user.email
        (notification,) = notify(
            "message", recipients=[patient], about=patient, payload={"sender_name": sender, **message.validated_data}
        )
        log_patient_access(
            request, [(patient.pk, str(notification.pk))], action=AccessAction.CREATE, resource="message"
        )
        return Response(NotificationSerializer(notification).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["notifications"])
class PushDeviceViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, OwnedViewSet
):
    """The signed-in person's phones for push. Registering a token again (a reinstall, another account on the
    phone) moves it to the caller: one token, one person."""

    model = PushDevice
    patient_field = "user"
    serializer_class = PushDeviceSerializer

    def create(self, request: Request) -> Response:
        serializer = PushDeviceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        device, _ = PushDevice.objects.update_or_create(
            token=data["token"],
            defaults={"user": request.user, "platform": data["platform"], "name": data.get("name", "")},
        )
        return Response(PushDeviceSerializer(device).data, status=status.HTTP_201_CREATED)


# --- Phone verification: texts go to a verified number only --------------------------------------------------------


class PhoneThrottle(ScopedRateThrottle):
    """Per person (each code is a paid text): PHONE_THROTTLE_RATES, read at request time so tests can change it;
    counts in the shared cache, or in memory while it is down (config.throttling)."""

    cache = throttle_cache

    def get_rate(self) -> str | None:
        return settings.PHONE_THROTTLE_RATES.get(self.scope)


class SmsUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The text could not be sent now; try again later."
    default_code = "sms_unavailable"


def _phone_state(user) -> dict:  # noqa: ANN001
    verified = VerifiedPhone.objects.filter(user=user).first()
    if verified is None:
        return {"phone": None, "verified_at": None, "sms_active": False}
    return {
        "phone": mask(verified.number),
        "verified_at": verified.verified_at,
        "sms_active": phones.sms_number(user) is not None,
    }


@extend_schema(tags=["notifications"])
class PhoneView(APIView):
    """The signed-in person's verified phone, masked: texts go there while it is still the profile's phone."""

    @extend_schema(responses={200: PhoneSerializer})
    def get(self, request: Request) -> Response:
        """The verified number (masked), when it was verified, and whether texts go to it now."""
        return Response(PhoneSerializer(_phone_state(request.user)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request) -> Response:
        """Forget the verified number (and any open code): no more texts until one is verified again."""
        VerifiedPhone.objects.filter(user=request.user).delete()
        PhoneChallenge.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["notifications"])
class PhoneVerifyView(APIView):
    """Text a 6-digit code to a number (E.164), good for 10 minutes and 5 tries; asking again replaces it."""

    throttle_classes = [PhoneThrottle]
    throttle_scope = "phone_verify"

    @extend_schema(
        request=PhoneVerifySerializer,
        responses={
            200: PhoneCodeSentSerializer,
            503: OpenApiResponse(description="The SMS provider could not take the text now: try again later."),
        },
    )
    def post(self, request: Request) -> Response:
        """Send a code to `phone`; a number not in E.164 is 400 (`invalid_phone`); too many asks, 429."""
        serializer = PhoneVerifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        number = serializer.validated_data["phone"]
        try:
            phones.start_verification(user=request.user, number=number)
        except (Retry, GiveUp, NotSent) as exc:
            raise SmsUnavailable() from exc
        challenge = PhoneChallenge.objects.get(user=request.user)
        return Response(PhoneCodeSentSerializer({"phone": mask(number), "expires_at": challenge.expires_at}).data)


# A wrong code must stay counted though the answer is an error, which would roll back the request's
# transaction; so confirming runs outside ATOMIC_REQUESTS (as login does).
@method_decorator(transaction.non_atomic_requests, name="dispatch")
@extend_schema(tags=["notifications"])
class PhoneConfirmView(APIView):
    """Confirm the code: the number becomes the verified one and the profile's phone."""

    throttle_classes = [PhoneThrottle]
    throttle_scope = "phone_confirm"

    @extend_schema(request=PhoneConfirmSerializer, responses={200: PhoneSerializer})
    def post(self, request: Request) -> Response:
        """400 with `invalid_code`, `code_expired`, `too_many_attempts` (ask again) or `no_code`."""
        serializer = PhoneConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            phones.confirm(user=request.user, number=data["phone"], code=data["code"])
        except phones.PhoneError as exc:
            raise ValidationError({"code": [exc.detail]}, code=exc.code) from exc
        return Response(PhoneSerializer(_phone_state(request.user)).data)
