"""The export endpoint (a file, or a job for a large export) and the export jobs with their downloads."""

from __future__ import annotations

from django.db.models import Q
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OwnedViewSet, PatientQuerySerializer
from accounts.models import AccessAction, Scope
from config.errors import ConflictError
from config.inputs import DateField
from health_metrics.fields import MetricTypeField

from ..exports import (
    CONTENT_TYPES,
    MAX_DAYS,
    SYNC_MAX_DAYS,
    csv_lines,
    exceeds_sync_limit,
    export_document,
    export_filename,
    export_readings,
    presigned_url,
    start_export_job,
)
from ..models import ExportFormat, ExportJob, ExportStatus


class FileNegotiation(BaseContentNegotiation):
    """These views answer files they make themselves, and errors as JSON.

    So neither `?format=` (here the export's file format, which DRF would otherwise read as a renderer
    name and answer 404) nor an `Accept: text/csv` header (406) picks a renderer.
    """

    def select_parser(self, request: Request, parsers: list) -> object:
        return parsers[0]

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


class ExportQuerySerializer(PatientQuerySerializer):
    format = serializers.ChoiceField(choices=ExportFormat.choices, help_text="csv, pdf (a report) or fhir (R4).")
    start_date = DateField(help_text="First local day (inclusive).")
    end_date = DateField(help_text="Last local day (inclusive).")
    metric_type = MetricTypeField(required=False, help_text="Only this metric type (code or label).")

    def get_fields(self) -> dict:
        fields = super().get_fields()
        # `async` is a Python keyword, so it cannot be declared as a class attribute.
        fields["async"] = serializers.BooleanField(
            default=False,
            help_text=f"Make the file in the background (202 with a job). Required above {SYNC_MAX_DAYS} days.",
        )
        return fields

    def validate(self, attrs: dict) -> dict:
        span = (attrs["end_date"] - attrs["start_date"]).days
        if span < 0:
            raise serializers.ValidationError({"end_date": "Must not be before start_date."})
        if span >= MAX_DAYS:
            raise serializers.ValidationError({"end_date": f"At most {MAX_DAYS} days at a time."})
        if span >= SYNC_MAX_DAYS and not attrs["async"]:
            raise serializers.ValidationError(
                {"end_date": f"At most {SYNC_MAX_DAYS} days at a time; add async=true for a longer export."}
            )
        return attrs


class ExportJobSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    patient = serializers.UUIDField(source="user_id", read_only=True)
    requested_by = serializers.UUIDField(source="requested_by_id", read_only=True)
    metric_type = MetricTypeField(source="metric_type_id", read_only=True, allow_null=True)
    download_url = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When the file is deleted (EXPORT_RETENTION_HOURS after it was made).",
    )

    class Meta:
        model = ExportJob
        fields = (
            "id",
            "url",
            "patient",
            "requested_by",
            "format",
            "start_date",
            "end_date",
            "metric_type",
            "status",
            "row_count",
            "size_bytes",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "expires_at",
            "download_url",
        )
        read_only_fields = fields

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_url(self, job: ExportJob) -> str:
        return self._absolute(reverse("api:export-job-detail", args=[job.pk]))

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, job: ExportJob) -> str | None:
        """A presigned storage link on S3; elsewhere this API's authenticated download route. None until done."""
        if job.status != ExportStatus.DONE or not job.file:
            return None
        return presigned_url(job=job) or self._absolute(reverse("api:export-job-download", args=[job.pk]))


class ExportAcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=ExportStatus.choices)
    url = serializers.URLField()


FILE_RESPONSES = {
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="CSV, one line per reading."),
    (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF report."),
    (200, "application/fhir+json"): OpenApiResponse(OpenApiTypes.OBJECT, description="A FHIR R4 Bundle."),
}


@extend_schema(tags=["health-metrics"])
class ExportViewSet(OwnedViewSet):
    """GET health-metrics/export/: the patient's readings of a date range as CSV, a PDF report or FHIR R4."""

    model = ExportJob
    patient_field = "user"
    access_scope = Scope.METRICS
    content_negotiation_class = FileNegotiation

    @extend_schema(
        operation_id="health_metrics_export",
        parameters=[ExportQuerySerializer],
        responses={**FILE_RESPONSES, 202: ExportAcceptedSerializer},
    )
    def export(self, request: Request) -> HttpResponse:
        """A file for up to EXPORT_SYNC_MAX_READINGS readings; above that, or with async=true, 202 with a job.

        CSV is streamed. Clinicians export a consented patient's data with `?patient=` (logged).
        """
        query = ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        patient = self.requested_patient() or request.user
        fmt, start, end, metric_type = q["format"], q["start_date"], q["end_date"], q.get("metric_type")
        readings = export_readings(patient=patient, start=start, end=end, metric_type=metric_type)
        if q["async"] or exceeds_sync_limit(readings):
            job = start_export_job(
                requested_by=request.user, patient=patient, format=fmt, start=start, end=end, metric_type=metric_type
            )
            self.log_patient_access([(patient.pk, str(job.pk))], action=AccessAction.READ, resource="export")
            data = ExportJobSerializer(job, context={"request": request}).data
            return Response({key: data[key] for key in ("id", "status", "url")}, status=status.HTTP_202_ACCEPTED)
        self.log_patient_access([(patient.pk, "")], action=AccessAction.READ, resource="export")
        filename = export_filename(format=fmt, start=start, end=end, metric_type=metric_type)
        if fmt == ExportFormat.CSV:
            response = StreamingHttpResponse(csv_lines(readings), content_type=CONTENT_TYPES[fmt])
        else:
            content = export_document(
                format=fmt,
                patient=patient,
                start=start,
                end=end,
                metric_type=metric_type,
                readings=readings,
                requested_by=request.user,
            )
            response = HttpResponse(content, content_type=CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


@extend_schema(tags=["health-metrics"])
class ExportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedViewSet):
    """Export jobs, newest first: the ones the user asked for, and the ones of their own data."""

    model = ExportJob
    patient_field = "user"
    access_scope = Scope.METRICS
    serializer_class = ExportJobSerializer

    def get_queryset(self):
        user = self.request.user
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset
        return queryset.filter(Q(requested_by=user) | Q(user=user))

    @extend_schema(
        responses={
            **FILE_RESPONSES,
            409: OpenApiResponse(description="The file is not ready."),
            410: OpenApiResponse(description="The file was deleted after EXPORT_RETENTION_HOURS."),
        }
    )
    @action(detail=True, content_negotiation_class=FileNegotiation)
    def download(self, request: Request, pk: str | None = None) -> FileResponse:
        """The finished file, streamed from storage (on S3, `download_url` links to the bucket instead)."""
        job = self.get_object()
        if job.status == ExportStatus.EXPIRED:
            raise ConflictError("The export's file was deleted after its retention period.", code="expired", status=410)
        if job.status != ExportStatus.DONE or not job.file:
            raise ConflictError(f"The export is {job.status}; the file is not ready.", code="not_ready")
        filename = export_filename(
            format=job.format, start=job.start_date, end=job.end_date, metric_type=job.metric_type
        )
        return FileResponse(
            job.file.open("rb"), as_attachment=True, filename=filename, content_type=CONTENT_TYPES[job.format]
        )
