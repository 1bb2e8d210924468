from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.inputs import JSONField, ModelSerializer
from health_metrics.catalog import get_catalog
from health_metrics.reading_input import ReadingInput

from ..configuration import CONFIGURATION_KEYS, configuration_errors
from ..models import Device, DeviceAlert, DeviceStatus, IngestBatch


class DeviceConfigurationSerializer(serializers.Serializer):
    """The keys of a device's configuration (the OpenAPI document's view of iot_devices.configuration)."""

    def get_fields(self) -> dict:
        return {
            name: serializers.IntegerField(
                min_value=key.minimum,
                max_value=key.maximum,
                required=False,
                help_text=f"{key.help_text} Default {key.default}.",
            )
            for name, key in CONFIGURATION_KEYS.items()
        }


@extend_schema_field(DeviceConfigurationSerializer)
class DeviceConfigurationField(JSONField):
    """A configuration checked against the schema: a bad key is a 400 naming it (`configuration.<key>`)."""

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        errors = configuration_errors(value)
        if "" in errors:
            raise serializers.ValidationError(errors[""], code="invalid")
        if errors:
            raise serializers.ValidationError({name: [message] for name, message in errors.items()}, code="invalid")
        return value


class DeviceSerializer(ModelSerializer):
    supported_metric_types = serializers.ListField(child=serializers.CharField(), required=False)
    configuration = DeviceConfigurationField(required=False)

    class Meta:
        model = Device
        fields = (
            "id",
            "owner",
            "name",
            "device_type",
            "manufacturer",
            "model",
            "serial_number",
            "firmware_version",
            "supported_metric_types",
            "status",
            "is_active",
            "last_seen_at",
            "battery_level",
            "signal_strength",
            "configuration",
            "data_source",
            "created_at",
            "updated_at",
        )
        read_only_fields = (
            "id",
            "owner",
            "data_source",
            "last_seen_at",
            "battery_level",
            "signal_strength",
            "created_at",
            "updated_at",
        )

    def validate_supported_metric_types(self, value: list[str]) -> list[str]:
        codes = []
        for label in value:
            metric_type = get_catalog().resolve(label)
            if metric_type is None:
                raise serializers.ValidationError(
                    f"Unknown metric type {label!r}. Valid types: {', '.join(get_catalog().codes)}."
                )
            codes.append(metric_type.code)
        return codes


class DeviceWithKeySerializer(DeviceSerializer):
    api_key = serializers.CharField(read_only=True, help_text="Shown once: store it on the device.")

    class Meta(DeviceSerializer.Meta):
        fields = (*DeviceSerializer.Meta.fields, "api_key")


class ApiKeySerializer(serializers.Serializer):
    api_key = serializers.CharField(help_text="Shown once; the previous key no longer works.")


class DeviceReadingSerializer(ReadingInput):
    """One reading of a batch (documentation: the worker checks each one, and a bad one is that item's error)."""


class IngestEnvelopeSerializer(serializers.Serializer):
    """What a device sends (documentation; checked in iot_devices.services.receive_batch)."""

    batch_id = serializers.CharField(max_length=100, help_text="The device's own id for the batch.")
    sent_at = serializers.DateTimeField(required=False, help_text="The device's clock when it sent the batch.")
    readings = serializers.ListField(child=DeviceReadingSerializer(), max_length=10_000)


class BatchErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    attr = serializers.CharField()
    code = serializers.CharField()
    detail = serializers.CharField()


class IngestBatchSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    errors = BatchErrorSerializer(many=True, read_only=True)

    class Meta:
        model = IngestBatch
        fields = (
            "id",
            "url",
            "device",
            "batch_id",
            "status",
            "reading_count",
            "accepted",
            "duplicates",
            "rejected",
            "errors",
            "attempts",
            "failure_reason",
            "sent_at",
            "received_at",
            "started_at",
            "finished_at",
        )
        read_only_fields = fields

    def get_url(self, batch: IngestBatch) -> str:
        path = reverse("api:ingest-batch-detail", args=[batch.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class IngestAcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    url = serializers.CharField()


class HeartbeatSerializer(serializers.Serializer):
    battery_level = serializers.IntegerField(min_value=0, max_value=100, required=False)
    signal_strength = serializers.IntegerField(min_value=-150, max_value=0, required=False, help_text="dBm")
    firmware_version = serializers.CharField(max_length=50, required=False)
    status = serializers.ChoiceField(choices=DeviceStatus.choices, required=False)


class DeviceStatsSerializer(serializers.Serializer):
    devices = serializers.IntegerField()
    active = serializers.IntegerField()
    batches = serializers.DictField(child=serializers.IntegerField())
    readings_accepted = serializers.IntegerField()
    readings_rejected = serializers.IntegerField()


class DeviceAlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeviceAlert
        fields = (
            "id",
            "device",
            "kind",
            "batch",
            "message",
            "opened_at",
            "resolved_at",
            "acknowledged_at",
            "acknowledged_by",
        )
        read_only_fields = fields
