"""The patient overview (`patients/`): a clinician's consented patients, each section under its scope."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from accounts.api.base import OwnedViewSet
from accounts.models import CareTeamGrant, Scope, User
from accounts.selectors import consented_patients, visible_patients
from health_metrics.alerts import triage_order
from health_metrics.display import DisplayUnitsMixin, units_parameter
from health_metrics.models import AlertStatus, HealthAlert
from health_metrics.selectors import latest_readings, vital_sign_type_ids

from .serializers import PatientSerializer


@extend_schema(tags=["patients"])
@extend_schema_view(
    list=extend_schema(parameters=[units_parameter()]),
    retrieve=extend_schema(parameters=[units_parameter()]),
)
class PatientViewSet(DisplayUnitsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedViewSet):
    """A clinician's consented patients (staff: every patient). Name and email under any scope; the medical
    profile, latest vitals and open alerts only where the grant covers the metrics scope (null otherwise)."""

    model = User
    patient_field = None
    serializer_class = PatientSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return User.objects.none()
        user = self.request.user
        grants = CareTeamGrant.objects.active().filter(clinician=user)
        return consented_patients(user).prefetch_related(
            "profile__emergency_contacts",
            Prefetch("care_team_grants", queryset=grants, to_attr="grants_to_viewer"),
        )

    def paginate_queryset(self, queryset: Any) -> list | None:
        page = super().paginate_queryset(queryset)
        self.attach_sections(page if page is not None else queryset)
        return page

    def get_object(self) -> User:
        patient = super().get_object()
        self.attach_sections([patient])
        return patient

    def attach_sections(self, patients: Iterable[User]) -> None:
        """Set each patient's profile, latest vitals and open alerts, or None where the grant does not cover them.

        A fixed number of queries for the whole page. The rows are part of the patient read that
        OwnedViewSet already writes to the access log (list: one row per patient; retrieve: one row).
        """
        patients = list(patients)
        allowed = set(
            visible_patients(self.request.user, Scope.METRICS)
            .filter(pk__in=[patient.pk for patient in patients])
            .values_list("pk", flat=True)
        )
        vitals = latest_readings(user_ids=allowed, type_ids=vital_sign_type_ids())
        alerts: dict[Any, list[HealthAlert]] = defaultdict(list)
        open_statuses = [AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]
        open_alerts = HealthAlert.objects.filter(user_id__in=allowed, status__in=open_statuses).select_related(
            "metric_type"
        )
        for alert in triage_order(open_alerts):
            alerts[alert.user_id].append(alert)
        for patient in patients:
            visible = patient.pk in allowed
            patient.profile_for_viewer = patient.profile if visible else None
            patient.vitals_for_viewer = vitals.get(patient.pk, []) if visible else None
            patient.open_alerts_for_viewer = alerts[patient.pk] if visible else None
