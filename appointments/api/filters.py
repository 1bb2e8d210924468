"""Filters of the provider directory and the appointment list."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from config.filters import FilterSet

from ..models import Appointment, AppointmentStatus, Provider


class ProviderFilterSet(FilterSet):
    specialty = django_filters.CharFilter(
        field_name="user__clinician_profile__specialty", lookup_expr="icontains", help_text="Part of the specialty."
    )
    organization = django_filters.UUIDFilter(field_name="user__clinician_profile__organization_id")
    name = django_filters.CharFilter(method="filter_name", help_text="Part of the first or last name.")

    class Meta:
        model = Provider
        fields = ("specialty", "organization", "name")

    def filter_name(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        for word in value.split():
            queryset = queryset.filter(Q(user__first_name__icontains=word) | Q(user__last_name__icontains=word))
        return queryset


class AppointmentFilterSet(FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=AppointmentStatus.choices, help_text="Repeat for several: ?status=requested&status=confirmed."
    )
    role = django_filters.ChoiceFilter(
        choices=[("patient", "As patient"), ("provider", "As provider")],
        method="filter_role",
        help_text="Only the appointments where the caller is the patient, or the provider.",
    )

    class Meta:
        model = Appointment
        fields = ("status", "provider", "role")

    def filter_role(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        user = self.request.user
        return queryset.filter(patient=user) if value == "patient" else queryset.filter(provider=user)
