"""The provider directory with free slots, and appointments: booking, the status changes, provider-only fields."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OwnedViewSet
from accounts.models import AccessAction, Scope, User
from accounts.selectors import visible_patients
from config.api import UUID_REGEX

from .. import selectors, services
from ..models import Appointment, AppointmentEvent, AppointmentType, Provider
from .filters import AppointmentFilterSet, ProviderFilterSet
from .serializers import (
    AppointmentCreateSerializer,
    AppointmentSerializer,
    AppointmentUpdateSerializer,
    AvailabilityQuerySerializer,
    AvailabilitySerializer,
    ProviderSerializer,
    RescheduleSerializer,
    StatusChangeSerializer,
)

MAX_AVAILABILITY_DAYS = 31

CONFLICT = OpenApiResponse(description="`slot_taken`: the provider has a booking then (the clash is named).")
STATUS_CONFLICT = OpenApiResponse(
    description="`invalid_transition`: not allowed from the current status; `status_changed`: it changed meanwhile."
)


class ProviderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Clinicians who take bookings: specialty, organization, languages, appointment types; and their free slots."""

    serializer_class = ProviderSerializer
    filterset_class = ProviderFilterSet
    lookup_value_regex = UUID_REGEX

    def get_queryset(self):
        active_types = AppointmentType.objects.filter(active=True).order_by("name")
        return selectors.providers().prefetch_related(Prefetch("appointment_types", queryset=active_types))

    @extend_schema(parameters=[AvailabilityQuerySerializer], responses=AvailabilitySerializer)
    @action(detail=True, methods=["get"])
    def availability(self, request: Request, pk: str | None = None) -> Response:
        """Free slots of one appointment type in a range of the provider's local days (at most 31)."""
        query = AvailabilityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)  # bad input is 400 whatever the id
        provider = self.get_object()
        start_date, end_date = query.validated_data["start_date"], query.validated_data["end_date"]
        if end_date < start_date:
            raise exceptions.ValidationError({"end_date": ["Must not be before start_date."]})
        if (end_date - start_date).days + 1 > MAX_AVAILABILITY_DAYS:
            raise exceptions.ValidationError(
                {"end_date": [f"At most {MAX_AVAILABILITY_DAYS} days from start_date (both included)."]}
            )
        types = {t.pk: t for t in provider.appointment_types.all()}  # active ones, prefetched
        appointment_type = types.get(query.validated_data["type"])
        if appointment_type is None:
            valid = ", ".join(str(pk) for pk in types) or "none"
            raise exceptions.ValidationError({"type": [f"Not an appointment type of this provider. Valid: {valid}."]})
        slots = selectors.provider_slots(
            provider=provider,
            appointment_type=appointment_type,
            start_date=start_date,
            end_date=end_date,
            now=timezone.now(),
        )
        local = ZoneInfo(provider.timezone)
        duration = timedelta(minutes=appointment_type.duration_minutes)
        body = {
            "provider": provider.pk,
            "appointment_type": appointment_type.pk,
            "timezone": provider.timezone,
            "start_date": start_date,
            "end_date": end_date,
            "slots": [
                {"starts_at": s, "ends_at": s + duration, "local_start": s.astimezone(local).isoformat()} for s in slots
            ],
        }
        return Response(AvailabilitySerializer(body).data)


class AppointmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, OwnedViewSet):
    """The caller's appointments as patient or provider, and those of patients whose grant covers appointments."""

    model = Appointment
    patient_field = "patient"
    access_scope = Scope.APPOINTMENTS
    serializer_class = AppointmentSerializer
    filterset_class = AppointmentFilterSet

    def get_queryset(self):
        events = AppointmentEvent.objects.order_by("at", "id")
        return (
            super()
            .get_queryset()
            .select_related("appointment_type", "rescheduled_to")
            .prefetch_related(Prefetch("events", queryset=events))
            .order_by("-starts_at")
        )

    def _answer(self, appointment: Appointment, status_code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=appointment.pk)
        return Response(AppointmentSerializer(fresh, context=self.get_serializer_context()).data, status=status_code)

    @extend_schema(request=AppointmentCreateSerializer, responses={201: AppointmentSerializer, 409: CONFLICT})
    def create(self, request: Request, *args, **kwargs) -> Response:
        """Book a slot: for yourself, or (a clinician) for a patient whose grant covers appointments."""
        data = AppointmentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        patient = self._patient(values.get("patient"))
        provider = Provider.objects.select_related("user").filter(pk=values["provider"]).first()
        if provider is None:
            raise exceptions.ValidationError({"provider": ["No such provider (see providers/)."]})
        appointment_type = AppointmentType.objects.filter(pk=values["appointment_type"]).first()
        if appointment_type is None or appointment_type.provider_id != provider.pk or not appointment_type.active:
            valid = ", ".join(
                str(pk) for pk in provider.appointment_types.filter(active=True).values_list("pk", flat=True)
            )
            raise exceptions.ValidationError(
                {"appointment_type": [f"Not an appointment type of this provider. Valid: {valid or 'none'}."]}
            )
        appointment = services.book_appointment(
            patient=patient,
            provider=provider,
            appointment_type=appointment_type,
            starts_at=values["starts_at"],
            reason=values["reason"],
            booked_by=request.user,
        )
        self.log_access([appointment], action=AccessAction.CREATE, per_object=True)
        return self._answer(appointment, status.HTTP_201_CREATED)

    def _patient(self, patient_id) -> User:  # noqa: ANN001
        user = self.request.user
        if patient_id is None or patient_id == user.pk:
            return user
        patient = visible_patients(user, Scope.APPOINTMENTS).filter(pk=patient_id).first()
        if patient is None:
            raise exceptions.NotFound("No such patient.")
        return patient

    @extend_schema(request=AppointmentUpdateSerializer, responses=AppointmentSerializer)
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        """The patient changes the reason; the provider the clinical fields and the video link."""
        appointment = self.get_object()
        data = AppointmentUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.update_appointment(appointment=appointment, actor=request.user, changes=dict(data.validated_data))
        return self._answer(appointment)

    def _change(self, request: Request, action_name: str) -> Response:
        appointment = self.get_object()
        data = StatusChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.change_status(
            appointment=appointment, action=action_name, actor=request.user, note=data.validated_data["note"]
        )
        return self._answer(appointment)

    @extend_schema(request=StatusChangeSerializer, responses={200: AppointmentSerializer, 409: STATUS_CONFLICT})
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str | None = None) -> Response:
        """The provider confirms a requested appointment."""
        return self._change(request, "confirm")

    @extend_schema(request=StatusChangeSerializer, responses={200: AppointmentSerializer, 409: STATUS_CONFLICT})
    @action(detail=True, methods=["post"], url_path="check-in")
    def check_in(self, request: Request, pk: str | None = None) -> Response:
        """The provider checks the patient in to a confirmed appointment."""
        return self._change(request, "check_in")

    @extend_schema(request=StatusChangeSerializer, responses={200: AppointmentSerializer, 409: STATUS_CONFLICT})
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        """The provider completes a checked-in appointment."""
        return self._change(request, "complete")

    @extend_schema(request=StatusChangeSerializer, responses={200: AppointmentSerializer, 409: STATUS_CONFLICT})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """The patient (until the cut-off) or the provider cancels a requested or confirmed appointment."""
        return self._change(request, "cancel")

    @extend_schema(request=StatusChangeSerializer, responses={200: AppointmentSerializer, 409: STATUS_CONFLICT})
    @action(detail=True, methods=["post"], url_path="no-show")
    def no_show(self, request: Request, pk: str | None = None) -> Response:
        """The provider marks that the patient did not come (after the start time)."""
        return self._change(request, "no_show")

    @extend_schema(
        request=RescheduleSerializer,
        responses={
            201: AppointmentSerializer,
            409: OpenApiResponse(description="`slot_taken`, `invalid_transition` or `status_changed`."),
        },
    )
    @action(detail=True, methods=["post"])
    def reschedule(self, request: Request, pk: str | None = None) -> Response:
        """Book a new slot in place of this one: answers the new appointment, linked to this (now `rescheduled`)."""
        appointment = self.get_object()
        data = RescheduleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        appointment_type = None
        if "appointment_type" in values:
            appointment_type = AppointmentType.objects.filter(
                pk=values["appointment_type"], provider_id=appointment.provider_id, active=True
            ).first()
            if appointment_type is None:
                raise exceptions.ValidationError({"appointment_type": ["Not an active type of this provider."]})
        new = services.reschedule_appointment(
            appointment=appointment,
            actor=request.user,
            starts_at=values["starts_at"],
            appointment_type=appointment_type,
            reason=values.get("reason"),
        )
        return self._answer(new, status.HTTP_201_CREATED)
