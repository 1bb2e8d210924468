from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum
from django.http import JsonResponse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import OwnedViewSet
from accounts.api.sync import ChangesMixin
from accounts.authentication import JWTAuthentication
from accounts.models import Scope
from config.api import error_body

from ..authentication import DeviceKeyAuthentication, DevicePrincipal, IsDevice
from ..models import BatchStatus, Device, DeviceAlert, IngestBatch
from ..services import (
    BatchTooLarge,
    acknowledge_device_alert,
    receive_batch,
    record_heartbeat,
    register_device,
    rotate_device_key,
)
from .serializers import (
    ApiKeySerializer,
    DeviceAlertSerializer,
    DeviceSerializer,
    DeviceStatsSerializer,
    DeviceWithKeySerializer,
    HeartbeatSerializer,
    IngestAcceptedSerializer,
    IngestBatchSerializer,
    IngestEnvelopeSerializer,
)


@extend_schema(tags=["iot-devices"])
class DeviceViewSet(
    ChangesMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OwnedViewSet,
):
    """A patient's devices. Registering answers the device's API key, once."""

    model = Device
    patient_field = "owner"
    change_collection = "devices"
    access_scope = Scope.METRICS
    serializer_class = DeviceSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(request=DeviceSerializer, responses={201: DeviceWithKeySerializer})
    def create(self, request: Request) -> Response:
        serializer = DeviceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device, key = register_device(owner=request.user, **serializer.validated_data)
        body = {**DeviceSerializer(device).data, "api_key": key}
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: DeviceSerializer) -> None:
        self._check_owner(serializer.instance)
        serializer.save()

    def perform_destroy(self, instance: Device) -> None:
        self._check_owner(instance)
        instance.delete()  # the key goes with it

    def _check_owner(self, device: Device) -> None:
        if device.owner_id != self.request.user.pk:
            raise PermissionDenied("Only the owner changes a device.")

    @extend_schema(request=None, responses={200: ApiKeySerializer})
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request: Request, pk: str | None = None) -> Response:
        device = self.get_object()
        self._check_owner(device)
        return Response({"api_key": rotate_device_key(device=device)})

    @extend_schema(responses={200: IngestBatchSerializer(many=True)})
    @action(detail=True)
    def batches(self, request: Request, pk: str | None = None) -> Response:
        device = self.get_object()
        page = self.paginate_queryset(IngestBatch.objects.filter(device=device).order_by("-received_at"))
        return self.get_paginated_response(IngestBatchSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(responses={200: DeviceStatsSerializer})
    @action(detail=False)
    def stats(self, request: Request) -> Response:
        devices = Device.objects.filter(owner=request.user)
        totals = devices.aggregate(devices=Count("id"), active=Count("id", filter=Q(is_active=True)))
        batches = IngestBatch.objects.filter(device__in=devices)
        by_status = dict(batches.order_by().values_list("status").annotate(n=Count("id")))
        sums = batches.aggregate(accepted=Sum("accepted"), rejected=Sum("rejected"))
        return Response(
            {
                **totals,
                "batches": {s: by_status.get(s, 0) for s in BatchStatus.values},
                "readings_accepted": sums["accepted"] or 0,
                "readings_rejected": sums["rejected"] or 0,
            }
        )

    def paginate_queryset(self, queryset):  # noqa: ANN001, ANN201
        if self.action == "batches":  # the batches are the device owner's; get_object logged the read
            return super(OwnedViewSet, self).paginate_queryset(queryset)
        return super().paginate_queryset(queryset)


@extend_schema(tags=["iot-devices"])
class IngestBatchViewSet(mixins.RetrieveModelMixin, OwnedViewSet):
    """Batches of readings from devices: POST with the device key; GET by the device or its owner."""

    model = IngestBatch
    patient_field = None
    patient_lookup = "device__owner"
    serializer_class = IngestBatchSerializer
    authentication_classes = [DeviceKeyAuthentication, JWTAuthentication]
    max_body_bytes = settings.INGEST_MAX_BODY_BYTES  # 10,000 readings

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return IngestBatch.objects.none()
        if isinstance(self.request.user, DevicePrincipal):
            return IngestBatch.objects.filter(device=self.request.auth)
        return IngestBatch.objects.for_user(self.request.user)

    def log_access(self, objects, *, action: str, per_object: bool) -> None:  # noqa: ANN001
        if isinstance(self.request.user, DevicePrincipal):
            return  # a device reading its own batches
        entries = [(batch.device.owner_id, str(batch.pk)) for batch in objects]
        self.log_patient_access(entries, action=action, resource="ingestbatch")

    def get_permissions(self):  # noqa: ANN201
        return [IsDevice()] if self.action == "create" else super().get_permissions()

    def permission_denied(self, request: Request, message=None, code=None) -> None:  # noqa: ANN001
        if self.action == "create":  # a person's token is no device key: refused as any missing key is (401)
            raise NotAuthenticated("Uploads take a device key (Authorization: Api-Key <key>).", code="device_key")
        super().permission_denied(request, message, code)

    @extend_schema(
        request=IngestEnvelopeSerializer,
        responses={202: IngestAcceptedSerializer, 200: IngestBatchSerializer},
        examples=[
            OpenApiExample(
                "A cuff's batch",
                request_only=True,
                value={
                    "batch_id": "cuff-7f3a-000128",
                    "sent_at": "2026-12-03T07:31:05+01:00",
                    "readings": [
                        {
                            "metric_type": "blood_pressure",
                            "systolic": 128,
                            "diastolic": 82,
                            "recorded_at": "2026-12-03T07:30:00+01:00",
                            "external_id": "m-000128-1",
                        },
                        {
                            "metric_type": "heart_rate",
                            "value": 71,
                            "unit": "bpm",
                            "recorded_at": "2026-12-03T07:30:00+01:00",
                            "external_id": "m-000128-2",
                        },
                    ],
                },
            )
        ],
    )
    def create(self, request: Request) -> Response:
        """Store a batch (≤ 10,000 readings) and process it in the background: 202 with its URL.

        The same batch_id with the same readings answers the stored batch (200) and stores
        nothing again; the same batch_id with different readings is 422.
        """
        try:
            batch, created = receive_batch(device=request.auth, body=request.data)
        except BatchTooLarge as exc:
            return JsonResponse(
                error_body(status_type="client_error", code="too_many_readings", detail=str(exc)), status=413
            )
        serializer = IngestBatchSerializer(batch, context={"request": request})
        if not created:
            return Response(serializer.data, status=status.HTTP_200_OK)
        data = serializer.data
        return Response(
            {"id": data["id"], "status": data["status"], "url": data["url"]}, status=status.HTTP_202_ACCEPTED
        )


@extend_schema(tags=["iot-devices"], request=HeartbeatSerializer, responses={200: DeviceSerializer})
class HeartbeatView(APIView):
    """A device reports it is alive: battery, firmware, signal, status."""

    authentication_classes = [DeviceKeyAuthentication]
    permission_classes = [IsDevice]

    def post(self, request: Request) -> Response:
        serializer = HeartbeatSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device = record_heartbeat(device=request.auth, data=serializer.validated_data)
        return Response(DeviceSerializer(device).data)


@extend_schema(tags=["iot-devices"])
class DeviceAlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedViewSet):
    """Device alerts (offline, low battery, rejected readings, a failed batch), newest first; owners acknowledge."""

    model = DeviceAlert
    patient_field = None
    patient_lookup = "device__owner"
    serializer_class = DeviceAlertSerializer
    filterset_fields = ("kind", "device")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return DeviceAlert.objects.none()
        queryset = DeviceAlert.objects.for_user(self.request.user).select_related("device")
        if self.request.query_params.get("open") in ("true", "1"):
            queryset = queryset.filter(resolved_at__isnull=True)
        return queryset

    def log_access(self, objects, *, action: str, per_object: bool) -> None:  # noqa: ANN001
        entries = [(alert.device.owner_id, str(alert.pk) if per_object else "") for alert in objects]
        self.log_patient_access(entries, action=action, resource="devicealert")

    @extend_schema(request=None, responses={200: DeviceAlertSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        alert = acknowledge_device_alert(alert=self.get_object(), by=request.user)
        return Response(DeviceAlertSerializer(alert).data)
