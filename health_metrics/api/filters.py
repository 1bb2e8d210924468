from __future__ import annotations

from datetime import datetime

import django_filters
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.exceptions import ValidationError

from config.filters import FilterSet
from config.inputs import InputError, check_date, utc_datetime

from ..catalog import get_catalog
from ..models import Reading, SourceKind


def _bound(value: str, name: str):  # noqa: ANN202
    """A date (a whole local day) or an ISO datetime with an offset, within what the API takes (config.inputs)."""
    try:
        return _parsed_bound(value, name)
    except InputError as error:
        raise ValidationError({name: [error.message]}, code=error.code) from None


def _parsed_bound(value: str, name: str):  # noqa: ANN202
    if len(value) == 10:  # YYYY-MM-DD: parse_datetime would read it as a naive midnight
        day = _parse(parse_date, value)
        if day is None:
            raise ValidationError({name: ["Must be a date (YYYY-MM-DD) or a datetime with an offset."]})
        return check_date(day)
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is not None:
        if moment.tzinfo is None:
            raise ValidationError({name: ["A date and time needs an offset, e.g. 2026-03-08T00:00:00-05:00."]})
        return utc_datetime(moment)
    try:
        day = parse_date(value)
    except ValueError:
        day = None
    if day is None:
        raise ValidationError({name: ["Must be a date (YYYY-MM-DD) or a datetime with an offset."]})
    return check_date(day)


def _parse(parser, value: str):  # noqa: ANN001, ANN202
    try:
        return parser(value)
    except ValueError:
        return None


def filter_metric_type(queryset, name: str, value: str):  # noqa: ANN001, ANN201
    """A metric type by code, alias or label; 400 listing the valid codes."""
    metric_type = get_catalog().resolve(value)
    if metric_type is None:
        raise ValidationError(
            {"metric_type": [f"Unknown metric type {value!r}. Valid types: {', '.join(get_catalog().codes)}."]}
        )
    return queryset.filter(metric_type_id=metric_type.id)


class ReadingFilterSet(FilterSet):
    metric_type = django_filters.CharFilter(method=filter_metric_type, help_text="Code, alias or label.")
    source = django_filters.ChoiceFilter(
        field_name="data_source__kind", choices=SourceKind.choices, help_text="The data source's kind."
    )
    # Through the source's reverse relation from iot_devices (by name: this app imports no sender).
    device = django_filters.UUIDFilter(field_name="data_source__device", help_text="Readings from one device.")
    data_source = django_filters.UUIDFilter(field_name="data_source_id", help_text="Readings from one data source.")
    start_date = django_filters.CharFilter(method="filter_start", help_text="Local day (inclusive) or datetime.")
    end_date = django_filters.CharFilter(method="filter_end", help_text="Local day (inclusive) or datetime.")

    class Meta:
        model = Reading
        fields = ("metric_type", "source", "device", "data_source", "start_date", "end_date")

    def filter_start(self, queryset, name, value):  # noqa: ANN001, ANN201
        bound = _bound(value, name)
        if isinstance(bound, datetime):
            return queryset.filter(recorded_at__gte=bound)
        return queryset.filter(local_date__gte=bound)

    def filter_end(self, queryset, name, value):  # noqa: ANN001, ANN201
        bound = _bound(value, name)
        if isinstance(bound, datetime):
            return queryset.filter(recorded_at__lte=bound)
        return queryset.filter(local_date__lte=bound)
