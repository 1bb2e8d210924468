"""The appointments API's shapes: the provider directory, free slots, appointments and their inputs."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.inputs import DateField, DateTimeField

from ..models import Appointment, AppointmentEvent, AppointmentType, Provider


class AppointmentTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = AppointmentType
        fields = ("id", "name", "duration_minutes", "telemedicine")
        read_only_fields = fields


class ProviderSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="user_id", read_only=True, help_text="The clinician's user id.")
    name = serializers.SerializerMethodField()
    specialty = serializers.SerializerMethodField()
    organization = serializers.SerializerMethodField(help_text="The organization's id, or null.")
    organization_name = serializers.SerializerMethodField()
    appointment_types = serializers.SerializerMethodField(help_text="The active types this provider offers.")

    class Meta:
        model = Provider
        fields = (
            "id",
            "name",
            "specialty",
            "organization",
            "organization_name",
            "bio",
            "languages",
            "timezone",
            "appointment_types",
            "buffer_before_minutes",
            "buffer_after_minutes",
            "minimum_notice_minutes",
            "horizon_days",
            "slot_interval_minutes",
            "accepting",
        )
        read_only_fields = fields

    def _profile(self, provider: Provider):  # noqa: ANN202
        return getattr(provider.user, "clinician_profile", None)

    def get_name(self, provider: Provider) -> str:
        return provider.user.get_full_name()

    def get_specialty(self, provider: Provider) -> str:
        profile = self._profile(provider)
        return profile.specialty if profile else ""

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_organization(self, provider: Provider) -> str | None:
        profile = self._profile(provider)
        return str(profile.organization_id) if profile and profile.organization_id else None

    def get_organization_name(self, provider: Provider) -> str:
        profile = self._profile(provider)
        return profile.organization.name if profile and profile.organization_id else ""

    @extend_schema_field(AppointmentTypeSerializer(many=True))
    def get_appointment_types(self, provider: Provider) -> list:
        types = [t for t in provider.appointment_types.all() if t.active]
        return AppointmentTypeSerializer(types, many=True).data


class AvailabilityQuerySerializer(serializers.Serializer):
    start_date = DateField(help_text="First local day (the provider's zone), included.")
    end_date = DateField(help_text="Last local day, included; at most 31 days after start_date.")
    type = serializers.UUIDField(help_text="An appointment type id of this provider.")


class SlotSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    local_start = serializers.CharField(help_text="The start in the provider's zone, ISO 8601 with its offset.")


class AvailabilitySerializer(serializers.Serializer):
    provider = serializers.UUIDField()
    appointment_type = serializers.UUIDField()
    timezone = serializers.CharField()
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    slots = SlotSerializer(many=True)


class AppointmentEventSerializer(serializers.ModelSerializer):
    actor = serializers.UUIDField(source="actor_id", read_only=True, allow_null=True)

    class Meta:
        model = AppointmentEvent
        fields = ("at", "actor", "from_status", "to_status", "note")
        read_only_fields = fields


class AppointmentSerializer(serializers.ModelSerializer):
    patient = serializers.UUIDField(source="patient_id", read_only=True)
    provider = serializers.UUIDField(source="provider_id", read_only=True)
    appointment_type = serializers.UUIDField(source="appointment_type_id", read_only=True)
    appointment_type_name = serializers.CharField(source="appointment_type.name", read_only=True)
    booked_by = serializers.UUIDField(source="booked_by_id", read_only=True, allow_null=True)
    status_changed_by = serializers.UUIDField(source="status_changed_by_id", read_only=True, allow_null=True)
    rescheduled_from = serializers.UUIDField(source="rescheduled_from_id", read_only=True, allow_null=True)
    rescheduled_to = serializers.SerializerMethodField(help_text="The booking that replaced this one, if any.")
    events = AppointmentEventSerializer(many=True, read_only=True, help_text="Every status change, oldest first.")
    video_link = serializers.CharField(
        read_only=True, help_text="The visit's URL, set by the provider for a telemedicine visit; empty until then."
    )

    class Meta:
        model = Appointment
        fields = (
            "id",
            "patient",
            "provider",
            "appointment_type",
            "appointment_type_name",
            "starts_at",
            "ends_at",
            "status",
            "reason",
            "telemedicine",
            "video_link",
            "notes",
            "diagnosis",
            "plan",
            "booked_by",
            "status_changed_at",
            "status_changed_by",
            "rescheduled_from",
            "rescheduled_to",
            "events",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_rescheduled_to(self, appointment: Appointment) -> str | None:
        try:
            return str(appointment.rescheduled_to.pk)
        except Appointment.DoesNotExist:
            return None


class AppointmentCreateSerializer(serializers.Serializer):
    provider = serializers.UUIDField(help_text="The provider's id (providers/).")
    appointment_type = serializers.UUIDField(help_text="One of the provider's appointment type ids.")
    starts_at = DateTimeField(help_text="A slot start from providers/{id}/availability/.")
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    patient = serializers.UUIDField(
        required=False, help_text="Clinicians booking for a patient whose grant covers appointments; else yourself."
    )


class AppointmentUpdateSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, help_text="The patient's.")
    notes = serializers.CharField(max_length=20000, required=False, allow_blank=True, help_text="The provider's.")
    diagnosis = serializers.CharField(max_length=5000, required=False, allow_blank=True, help_text="The provider's.")
    plan = serializers.CharField(max_length=20000, required=False, allow_blank=True, help_text="The provider's.")
    video_link = serializers.URLField(
        max_length=500, required=False, allow_blank=True, help_text="The provider's; telemedicine only."
    )


class StatusChangeSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class RescheduleSerializer(serializers.Serializer):
    starts_at = DateTimeField(help_text="The new slot's start.")
    appointment_type = serializers.UUIDField(required=False, help_text="Another type of the same provider.")
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)
