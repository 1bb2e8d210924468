"""`GET dashboard/`: the home screen in one request and a constant number of queries.

Latest value per vital sign, today's progress against active targets, open alerts, today's health score
and the devices that need attention (an unresolved device alert: offline, low battery, failing uploads).
A patient's own; a clinician's consented patient with `?patient=` (metrics scope; logged as a read).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import log_patient_access
from accounts.models import AccessAction, Scope, User
from accounts.selectors import user_timezone, visible_patients
from health_metrics.alerts import triage_order
from health_metrics.display import units_for_request, units_parameter
from health_metrics.models import AlertStatus, DailyHealthScore, HealthAlert, Target
from health_metrics.selectors import latest_readings, targets_progress, vital_sign_type_ids
from iot_devices.models import DeviceAlert

from .serializers import LatestVitalSerializer, OpenAlertSerializer


class TargetTodaySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    metric_type = serializers.CharField()
    kind = serializers.CharField(help_text="at_least, at_most or range.")
    target_value = serializers.FloatField(allow_null=True, help_text="Canonical unit, rounded.")
    target_min = serializers.FloatField(allow_null=True)
    target_max = serializers.FloatField(allow_null=True)
    current = serializers.FloatField(allow_null=True, help_text="Today's total (sum types) or the latest value.")
    percent = serializers.FloatField(allow_null=True)
    achieved = serializers.BooleanField()
    unit = serializers.CharField()
    unit_label = serializers.CharField()
    display_unit = serializers.CharField()
    display_unit_label = serializers.CharField()


class ScoreSerializer(serializers.Serializer):
    local_date = serializers.DateField()
    score = serializers.IntegerField(help_text="0-100.")
    parts = serializers.JSONField(help_text="What the score is made of (see health-score/).")


class DeviceAlertBriefSerializer(serializers.Serializer):
    kind = serializers.CharField()
    message = serializers.CharField()
    opened_at = serializers.DateTimeField()


class AttentionDeviceSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.CharField()
    battery_level = serializers.IntegerField(allow_null=True)
    last_seen_at = serializers.DateTimeField(allow_null=True)
    alerts = DeviceAlertBriefSerializer(many=True)


class DashboardSerializer(serializers.Serializer):
    patient = serializers.UUIDField()
    today = serializers.DateField(help_text="The patient's local day.")
    latest_vitals = LatestVitalSerializer(many=True)
    targets = TargetTodaySerializer(many=True)
    open_alerts = OpenAlertSerializer(many=True)
    open_alert_count = serializers.IntegerField()
    health_score = ScoreSerializer(allow_null=True, help_text="Today's, or null before it is computed.")
    devices_needing_attention = AttentionDeviceSerializer(many=True)


class DashboardView(APIView):
    access_scope = Scope.METRICS  # what a clinician's grant must cover for ?patient=

    @extend_schema(
        summary="The home screen in one request",
        tags=["dashboard"],
        parameters=[
            OpenApiParameter("patient", str, description="Clinicians: a consented patient's id."),
            units_parameter(),
        ],
        responses=DashboardSerializer,
    )
    def get(self, request: Request) -> Response:
        """Latest vitals, today's targets, open alerts, today's score and devices needing attention."""
        units = units_for_request(request)
        patient = self.patient(request)
        today = timezone.localdate(timezone=user_timezone(patient))
        vitals = latest_readings(user_ids=[patient.pk], type_ids=vital_sign_type_ids()).get(patient.pk, [])
        targets = list(Target.objects.filter(user=patient, is_active=True).select_related("metric_type"))
        progress = targets_progress(targets)
        open_statuses = [AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]
        alerts = list(
            triage_order(
                HealthAlert.objects.filter(user=patient, status__in=open_statuses).select_related("metric_type")
            )
        )
        score = DailyHealthScore.objects.filter(user=patient, local_date=today).first()
        body = {
            "patient": patient.pk,
            "today": today,
            "latest_vitals": vitals,
            "targets": [self.target(target, progress[target.pk], units) for target in targets],
            "open_alerts": alerts,
            "open_alert_count": len(alerts),
            "health_score": score,
            "devices_needing_attention": self.devices(patient),
        }
        return Response(DashboardSerializer(body, context={"request": request}).data)

    def patient(self, request: Request) -> User:
        raw = request.query_params.get("patient")
        if not raw:
            return request.user
        try:
            patient_id = uuid.UUID(raw)
        except ValueError:
            raise exceptions.ValidationError({"patient": ["Must be a patient id (UUID)."]}) from None
        patient = visible_patients(request.user, self.access_scope).filter(pk=patient_id).first()
        if patient is None:
            raise exceptions.NotFound("No such patient.")
        if patient.pk != request.user.pk:
            log_patient_access(request, [(patient.pk, "")], action=AccessAction.READ, resource="dashboard")
        return patient

    @staticmethod
    def target(target: Target, progress: dict[str, Any], units: Any) -> dict[str, Any]:
        shown = units.of(target.metric_type)
        value = shown.canonical.value
        return {
            "id": target.pk,
            "metric_type": target.metric_type.code,
            "kind": target.kind,
            "target_value": value(target.target_value),
            "target_min": value(target.target_min),
            "target_max": value(target.target_max),
            "current": value(progress["current"]),
            "percent": None if progress["percent"] is None else round(progress["percent"], 1),
            "achieved": progress["achieved"],
            **shown.unit_fields(),
        }

    @staticmethod
    def devices(patient: User) -> list[dict[str, Any]]:
        open_alerts = (
            DeviceAlert.objects.filter(device__owner=patient, resolved_at__isnull=True)
            .select_related("device")
            .order_by("device__name", "opened_at")
        )
        devices: dict[Any, dict[str, Any]] = {}
        alerts: dict[Any, list[DeviceAlert]] = defaultdict(list)
        for alert in open_alerts:
            devices.setdefault(alert.device_id, alert.device)
            alerts[alert.device_id].append(alert)
        return [
            {
                "id": device.pk,
                "name": device.name,
                "status": device.status,
                "battery_level": device.battery_level,
                "last_seen_at": device.last_seen_at,
                "alerts": alerts[device_id],
            }
            for device_id, device in devices.items()
        ]
