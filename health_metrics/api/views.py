from __future__ import annotations

from django.db.models import F, Sum
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import OwnedViewSet
from accounts.api.sync import ChangesMixin
from accounts.models import AccessAction, Scope, User
from accounts.selectors import user_timezone
from config.pagination import FastCountPagination, PageNumberPagination

from ..catalog import get_catalog
from ..display import DisplayUnitsMixin, units_for_request, units_parameter
from ..ingest import record_reading, record_readings
from ..models import DailySummary, DataSource, MetricType, Reading, Target
from ..selectors import stats, summary, targets_progress, trends
from ..services import delete_reading, set_target, update_data_source, update_reading
from .filters import ReadingFilterSet
from .serializers import (
    BulkCreateSerializer,
    BulkResultSerializer,
    DataSourceSerializer,
    MetricTypeSerializer,
    ReadingInputSerializer,
    ReadingSerializer,
    ReadingUpdateSerializer,
    StatSerializer,
    StatsQuerySerializer,
    SummaryQuerySerializer,
    SummarySerializer,
    TargetSerializer,
    TrendSerializer,
    TrendsQuerySerializer,
    present_stats,
    present_summary,
    present_trend,
)


class CatalogPagination(PageNumberPagination):
    page_size = 100


@extend_schema(tags=["health-metrics"])
class MetricTypeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The metric catalog: codes, labels, LOINC, canonical and accepted units, ranges, thresholds."""

    queryset = MetricType.objects.all()  # the public catalog, not anyone's data
    serializer_class = MetricTypeSerializer
    permission_classes = [AllowAny]
    pagination_class = CatalogPagination
    lookup_field = "code"
    lookup_value_regex = r"[a-z0-9_]+"


class PatientScopedMixin:
    """Reads about one patient: the user, or with `?patient=` a patient they may see (404 otherwise)."""

    def subject(self) -> User:
        patient = self.requested_patient()
        if patient is not None and patient.pk != self.request.user.pk:
            self.log_patient_access([(patient.pk, "")], action=AccessAction.READ, resource=f"reading-{self.action}")
            return patient
        return self.request.user


@extend_schema(tags=["health-metrics"])
@extend_schema_view(
    list=extend_schema(parameters=[units_parameter()]),
    retrieve=extend_schema(parameters=[units_parameter()]),
)
class ReadingViewSet(
    ChangesMixin,
    DisplayUnitsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    PatientScopedMixin,
    OwnedViewSet,
):
    """Readings, newest first. Clinicians read a consented patient's with `?patient=`."""

    model = Reading
    patient_field = "user"
    change_collection = "readings"
    access_scope = Scope.METRICS
    serializer_class = ReadingSerializer
    filterset_class = ReadingFilterSet
    pagination_class = FastCountPagination
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        # The kind of each reading's source in the same query (a join on the page's rows), not one per row.
        return super().get_queryset().annotate(source_kind=F("data_source__kind")).order_by("-recorded_at", "-id")

    def fast_count(self) -> int | None:
        """The list's count from the daily rollups, when its filters are ones rollups can answer.

        Every reading is counted in exactly one rollup's `reading_count` (its user, type and local
        day, every source), so their sum is the count, as of the last rollup task (run on commit
        after every write). A source filter or a datetime bound needs the rows themselves.
        """
        params = self.request.query_params
        bounds = [params.get(name) for name in ("start_date", "end_date")]
        by_source = params.get("source") or params.get("device") or params.get("data_source")
        if by_source or any(bound and len(bound) != 10 for bound in bounds):
            return None
        rollups = DailySummary.objects.for_user(self.request.user)
        patient = self.requested_patient()
        if patient is not None:
            rollups = rollups.filter(user=patient)
        if params.get("metric_type"):
            rollups = rollups.filter(metric_type=get_catalog().resolve(params["metric_type"]))
        if bounds[0]:
            rollups = rollups.filter(local_date__gte=bounds[0])
        if bounds[1]:
            rollups = rollups.filter(local_date__lte=bounds[1])
        return rollups.aggregate(total=Sum("reading_count"))["total"] or 0

    @extend_schema(
        request=ReadingInputSerializer,
        responses={201: ReadingSerializer, 200: ReadingSerializer},
        examples=[
            OpenApiExample(
                "Blood pressure",
                request_only=True,
                value={
                    "metric_type": "blood_pressure",
                    "systolic": 122,
                    "diastolic": 79,
                    "recorded_at": "2026-12-03T08:15:00+01:00",
                },
            ),
            OpenApiExample(
                "Weight in pounds",
                request_only=True,
                value={
                    "metric_type": "weight",
                    "value": 164.8,
                    "unit": "lb",
                    "recorded_at": "2026-12-03T07:05:00-05:00",
                    "client_id": "3f1c9a52-6d0e-4b8e-9c57-1a2b3c4d5e6f",
                },
            ),
        ],
        parameters=[units_parameter()],
    )
    def create(self, request: Request) -> Response:
        """Record one reading; `unit` is converted to the canonical unit. A retried `client_id` answers 200."""
        reading, created = record_reading(user=request.user, data=_object(request.data))
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(self.get_serializer(reading).data, status=code)

    @extend_schema(request=ReadingUpdateSerializer, responses={200: ReadingSerializer}, parameters=[units_parameter()])
    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        reading = self.get_object()
        self.require_patient(reading, what="readings")
        reading = update_reading(reading=reading, data=_object(request.data))
        return Response(self.get_serializer(reading).data)

    def perform_destroy(self, instance: Reading) -> None:
        self.require_patient(instance, what="readings")
        delete_reading(reading=instance)

    @extend_schema(
        request=BulkCreateSerializer,
        responses={200: BulkResultSerializer},
        examples=[
            OpenApiExample(
                "An offline sync",
                request_only=True,
                value={
                    "readings": [
                        {
                            "metric_type": "heart_rate",
                            "value": 64,
                            "recorded_at": "2026-12-02T22:40:00+01:00",
                            "client_id": "0b6e2f8a-1c3d-4e5f-8a9b-0c1d2e3f4a5b",
                        },
                        {
                            "metric_type": "steps",
                            "value": 8412,
                            "recorded_at": "2026-12-02T23:59:00+01:00",
                            "client_id": "7d4c3b2a-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
                        },
                        {
                            "metric_type": "blood_glucose",
                            "value": 5.8,
                            "unit": "mmol/L",
                            "recorded_at": "2026-12-03T07:10:00+01:00",
                            "notes": "before breakfast",
                            "client_id": "c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e6f",
                        },
                    ]
                },
            )
        ],
    )
    @action(detail=False, methods=["post"], url_path="bulk-create")
    def bulk_create(self, request: Request) -> Response:
        """Up to 1,000 readings (offline sync). Valid ones are stored even when others fail."""
        items = _object(request.data).get("readings")
        if not isinstance(items, list):
            return _bad("readings", "A list of readings is required.")
        if len(items) > 1000:
            return _bad("readings", f"At most 1,000 readings at a time; {len(items)} sent.", code="max_length")
        outcome = record_readings(user=request.user, items=items)
        body = {
            "created": outcome.count("created"),
            "replaced": outcome.count("replaced"),
            "duplicate": outcome.count("duplicate"),
            "superseded": outcome.count("superseded"),
            "errors": outcome.count("error"),
            "results": [result.as_dict() for result in outcome.results],
        }
        return Response(body)

    @extend_schema(parameters=[SummaryQuerySerializer, units_parameter()], responses={200: SummarySerializer})
    @action(detail=False)
    def summary(self, request: Request) -> Response:
        """Buckets of the patient's local calendar (day, week from Monday, month) with exact medians."""
        patient = self.subject()
        tz = user_timezone(patient)
        query = SummaryQuerySerializer(data=request.query_params, context={"tz": tz})
        query.is_valid(raise_exception=True)
        q = query.validated_data
        buckets = summary(
            patient=patient, metric_type=q["metric_type"], period=q["period"], start=q["start_date"], end=q["end_date"]
        )
        body = {
            "metric_type": q["metric_type"].code,
            "period": q["period"],
            "start_date": q["start_date"],
            "end_date": q["end_date"],
            "timezone": str(tz),
            "buckets": buckets,
        }
        return Response(present_summary(body, units_for_request(request).of(q["metric_type"])))

    @extend_schema(parameters=[TrendsQuerySerializer, units_parameter()], responses={200: TrendSerializer})
    @action(detail=False)
    def trends(self, request: Request) -> Response:
        """The last `days` days against the `days` before: means, change %, slope per day, direction."""
        patient = self.subject()
        query = TrendsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        metric_type = query.validated_data["metric_type"]
        body = trends(patient=patient, metric_type=metric_type, days=query.validated_data["days"])
        return Response(present_trend(body, units_for_request(request).of(metric_type)))

    @extend_schema(parameters=[StatsQuerySerializer, units_parameter()], responses={200: StatSerializer(many=True)})
    @action(detail=False, pagination_class=None)  # one entry per type: a short list, never paged
    def stats(self, request: Request) -> Response:
        """Per metric type over the last `days` days: count, latest, mean, min, max, share in range, direction."""
        patient = self.subject()
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = stats(patient=patient, days=query.validated_data["days"])
        return Response(present_stats(rows, units_for_request(request)))


@extend_schema(tags=["health-metrics"])
class DataSourceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, OwnedViewSet):
    """Where readings come from (manual entries, each device, each connection, imports) and their priority.

    When several sources report a daily total for the same type and day, the day takes the
    highest-priority source's total, never a sum. Only the patient changes a name or priority.
    """

    model = DataSource
    patient_field = "user"
    access_scope = Scope.METRICS
    serializer_class = DataSourceSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def perform_update(self, serializer: DataSourceSerializer) -> None:
        self.require_patient(serializer.instance, what="data sources")
        update_data_source(
            data_source=serializer.instance,
            name=serializer.validated_data.get("name"),
            priority=serializer.validated_data.get("priority"),
        )


@extend_schema(tags=["health-metrics"])
@extend_schema_view(
    **{name: extend_schema(parameters=[units_parameter()]) for name in ("list", "retrieve", "create", "partial_update")}
)
class TargetViewSet(
    ChangesMixin,
    DisplayUnitsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OwnedViewSet,
):
    """Goals per metric type with progress; one active target per type."""

    model = Target
    patient_field = "user"
    change_collection = "targets"
    access_scope = Scope.METRICS
    serializer_class = TargetSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return super().get_queryset().select_related("metric_type")

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        serializer = self.get_serializer(
            page, many=True, context={**self.get_serializer_context(), "progress": targets_progress(page)}
        )
        return self.get_paginated_response(serializer.data)

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        target = self.get_object()
        return Response(self._represent(target))

    def _represent(self, target: Target) -> dict:
        context = {**self.get_serializer_context(), "progress": targets_progress([target])}
        return TargetSerializer(target, context=context).data

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        target = set_target(user=request.user, **_target_fields(serializer.validated_data))
        return Response(self._represent(target), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        target = self.get_object()
        self.require_patient(target, what="targets")
        serializer = self.get_serializer(target, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        target = set_target(user=request.user, target=target, **_target_fields(serializer.validated_data))
        return Response(self._represent(target))

    def perform_destroy(self, instance: Target) -> None:
        self.require_patient(instance, what="targets")
        instance.delete()


def _target_fields(data: dict) -> dict:
    fields = dict(data)
    if "metric_type" in fields:
        fields["metric_type"] = fields["metric_type"].code
    return fields


def _object(data) -> dict:  # noqa: ANN001
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
    return data


def _bad(attr: str, detail: str, code: str = "invalid") -> Response:
    raise ValidationError({attr: [detail]}, code=code)
