"""The metric type as an API field, for the serializers of every app that takes one (readings, alerts, exports)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .catalog import get_catalog
from .models import MetricType


class MetricTypeField(serializers.Field):
    """A metric type by code, alias or label, case-insensitively; 400 lists the valid codes."""

    default_error_messages = {"invalid_choice": "Unknown metric type {label!r}. Valid types: {choices}."}

    def to_internal_value(self, data) -> MetricType:  # noqa: ANN001
        metric_type = get_catalog().resolve(data)
        if metric_type is None:
            self.fail("invalid_choice", label=data, choices=", ".join(get_catalog().codes))
        return metric_type

    def to_representation(self, value) -> str:  # noqa: ANN001
        return value.code if isinstance(value, MetricType) else get_catalog().by_id[value].code


extend_schema_field({"type": "string", "example": "heart_rate"})(MetricTypeField)
