"""The FHIR R4 read API under /fhir/r4/: Observation search and read, Patient read.

The same access rule, JWT authentication and access log as /api/v1/; answers are `application/fhir+json`
and errors are OperationOutcome resources. A search is a filter over what the user may see: `patient=`
naming someone the user may not see matches nothing (an empty searchset, as for a patient without
readings), while reading another patient's Observation or Patient by id is 404, as in the REST API.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Q
from django.db.models.functions import Coalesce
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView, exception_handler

from accounts.api.base import log_patient_access
from accounts.models import AccessAction, Scope, User
from accounts.selectors import visible_patients
from config.inputs import check_date, text_error, utc_datetime
from config.renderers import JSONRenderer
from health_metrics.models import MetricType, Reading

from .. import fhir

PUBLISHED = datetime(2026, 11, 23, tzinfo=UTC)  # when the capabilities below last changed
DEFAULT_COUNT = 50
MAX_COUNT = 1000
SEARCH_PARAMS = {"patient", "code", "date", "_count", "page", "_format"}
DATE_PREFIXES = ("eq", "gt", "lt", "ge", "le")
_DATE_VALUE = re.compile(
    r"^(?P<prefix>[a-z]{2})?(?P<value>(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<time>\d{2}:\d{2}(?::(?P<second>\d{2})(?P<fraction>\.\d+)?)?)(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?)$"
)
ISSUE_TYPES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 429: "throttled"}


class FhirJSONRenderer(JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"


class AlwaysFhir(BaseContentNegotiation):
    """FHIR JSON whatever the Accept header says (clients send application/json, */* or fhir+json)."""

    def select_parser(self, request: Request, parsers: list) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


def operation_outcome(*, status_code: int, detail: Any) -> dict[str, Any]:
    """One error issue per message; a field's messages name the search parameter in `expression`."""
    code = ISSUE_TYPES.get(status_code, "not-supported" if 405 <= status_code < 500 else "exception")
    issues = []
    if isinstance(detail, dict):
        for name, messages in detail.items():
            for message in messages if isinstance(messages, list) else [messages]:
                issues.append(
                    {"severity": "error", "code": code, "diagnostics": f"{name}: {message}", "expression": [name]}
                )
    else:
        for message in detail if isinstance(detail, list) else [detail]:
            issues.append({"severity": "error", "code": code, "diagnostics": str(message)})
    return {"resourceType": "OperationOutcome", "issue": issues}


def fhir_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's own handling (status, WWW-Authenticate, rollback), with an OperationOutcome as the body."""
    response = exception_handler(exc, context)
    if response is not None:
        # Django's Http404 and PermissionDenied carry no `detail`; DRF put its text in the body.
        detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data["detail"]
        response.data = operation_outcome(status_code=response.status_code, detail=detail)
    return response


class FhirSchema(AutoSchema):
    """drf-spectacular's schema, not the standardized-errors one (errors here are OperationOutcome), with the
    view's own operation id: generated ones collide (search and read are both "retrieve" of one path)."""

    def get_operation_id(self) -> str:
        return self.view.operation_id


class FhirView(APIView):
    """Base of the FHIR views: FHIR JSON in and out, OperationOutcome errors, the access log."""

    renderer_classes = [FhirJSONRenderer]
    content_negotiation_class = AlwaysFhir
    # Class-level @extend_schema builds on this schema; on a method it would build on the default again.
    schema = FhirSchema()
    operation_id: str

    def get_exception_handler(self):  # noqa: ANN201 - DRF's hook
        return fhir_exception_handler

    def base_url(self) -> str:
        return self.request.build_absolute_uri("/fhir/r4")

    def log_patient_access(self, entries: list[tuple[Any, str]], *, action: str, resource: str) -> None:
        log_patient_access(self.request, entries, action=action, resource=resource)


def _uuid_or_none(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


# --- Search parameters -----------------------------------------------------------------------------


@dataclass
class ObservationSearch:
    """The parsed search: filters to apply, page size and page number."""

    filters: list[Q] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    page: int = 1


def _patient_filter(values: list[str]) -> Q:
    ids = []
    for value in ",".join(values).split(","):
        patient_id = _uuid_or_none(value.strip().removeprefix("Patient/"))
        if patient_id is None:
            raise exceptions.ValidationError({"patient": [f"{value!r} is not a patient id (UUID or Patient/<id>)."]})
        ids.append(patient_id)
    return Q(user_id__in=ids)


def _code_filter(value: str) -> Q:
    """One `code` parameter: comma-separated tokens (OR), each `code`, `system|code` or `|code`."""
    types = Q(pk__in=[])
    for token in value.split(","):
        system, bar, code = token.strip().rpartition("|")
        if not code:
            raise exceptions.ValidationError({"code": [f"{token!r} has no code."]})
        if not bar:
            types |= Q(loinc=code) | Q(code=code)
        elif system == fhir.LOINC:
            types |= Q(loinc=code)
        elif system == fhir.METRIC_TYPE_SYSTEM:
            types |= Q(code=code)
        # `|code` (explicitly no system) and other systems name nothing in our catalog.
    return Q(metric_type__in=MetricType.objects.filter(types))


def _date_range(match: re.Match) -> tuple[date, date] | tuple[datetime, datetime]:
    """The implicit range [start, end) of a FHIR date or dateTime, at the precision it was given.

    Within what the API takes anywhere (config.inputs), so neither end overflows nor reaches PostgreSQL
    out of its range; InputError is a ValueError.
    """
    year, month, day = int(match["year"]), int(match["month"] or 1), int(match["day"] or 1)
    if match["time"]:
        if not match["zone"]:
            raise ValueError("a time needs a zone (Z or +hh:mm)")
        moment = utc_datetime(datetime.fromisoformat(match["value"]))
        if match["fraction"]:
            return moment, moment + timedelta(microseconds=1)
        return moment, moment + (timedelta(seconds=1) if match["second"] else timedelta(minutes=1))
    start = check_date(date(year, month, day))
    if match["day"]:
        return start, start + timedelta(days=1)
    if match["month"]:
        return start, date(year + month // 12, month % 12 + 1, 1)
    return start, date(year + 1, 1, 1)


def _date_filter(raw: str) -> Q:
    """One `date` parameter. A date without a time compares with the reading's own local calendar day
    (`local_date`); a dateTime with the instant, over the reading's period for interval types (FHIR's
    range semantics: ge and gt look at where the reading ends, le and lt at where it starts)."""
    # An unencoded "+" in a zone arrives as a space.
    match = _DATE_VALUE.match(raw.strip().replace(" ", "+"))
    if match is None:
        raise exceptions.ValidationError({"date": [f"{raw!r} is not a FHIR date or dateTime."]})
    prefix = match["prefix"] or "eq"
    if prefix not in DATE_PREFIXES:
        raise exceptions.ValidationError(
            {"date": [f"{raw!r}: the prefix {prefix!r} is not supported; use eq, gt, lt, ge or le."]}
        )
    try:
        start, end = _date_range(match)
    except ValueError as error:
        raise exceptions.ValidationError({"date": [f"{raw!r}: {error}."]}) from None
    if isinstance(start, datetime):
        begins, ends = "recorded_at", "effective_end"
    else:
        begins = ends = "local_date"
    return {
        "eq": Q(**{f"{begins}__gte": start, f"{ends}__lt": end}),
        "ge": Q(**{f"{ends}__gte": start}),
        "gt": Q(**{f"{ends}__gte": end}),
        "le": Q(**{f"{begins}__lt": end}),
        "lt": Q(**{f"{begins}__lt": start}),
    }[prefix]


def _positive_int(params: Any, name: str, default: int, *, minimum: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        number = int(raw)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise exceptions.ValidationError({name: [f"Must be a whole number of at least {minimum}."]})
    return number


def parse_observation_search(params: Any) -> ObservationSearch:
    for name, values in params.lists():  # text PostgreSQL cannot store is no search term either
        for value in [name, *values]:
            error = text_error(value)
            if error is not None:
                raise exceptions.ValidationError({name: [error.message]}, code=error.code)
    unknown = sorted(set(params) - SEARCH_PARAMS)
    if unknown:
        raise exceptions.ValidationError({name: ["This search parameter is not supported."] for name in unknown})
    search = ObservationSearch(
        count=min(_positive_int(params, "_count", DEFAULT_COUNT, minimum=0), MAX_COUNT),
        page=_positive_int(params, "page", 1, minimum=1),
    )
    if params.getlist("patient"):
        search.filters.append(_patient_filter(params.getlist("patient")))
    search.filters += [_code_filter(value) for value in params.getlist("code")]
    search.filters += [_date_filter(value) for value in params.getlist("date")]
    return search


# --- Views --------------------------------------------------------------------------------------------


def _outcome(description: str) -> OpenApiResponse:
    return OpenApiResponse(OpenApiTypes.OBJECT, description=f"OperationOutcome: {description}")


UNAUTHENTICATED = {401: _outcome("not signed in.")}
RESOURCE_ID = OpenApiParameter("id", str, OpenApiParameter.PATH, description="The resource id (a UUID).")


@extend_schema(
    tags=["fhir"],
    parameters=[
        OpenApiParameter("patient", str, description="Patient id (or Patient/<id>); comma = OR."),
        OpenApiParameter(
            "code", str, description="LOINC code, `http://loinc.org|<code>` or our metric-type code; comma = OR."
        ),
        OpenApiParameter(
            "date",
            str,
            many=True,
            explode=True,
            description="Repeatable; prefixes eq, ge, le, gt, lt; a date (local day) or dateTime with a zone.",
        ),
        OpenApiParameter("_count", int, description=f"Page size, default {DEFAULT_COUNT}, at most {MAX_COUNT}."),
        OpenApiParameter("page", int, description="Page number, from 1."),
    ],
    responses={
        200: OpenApiResponse(OpenApiTypes.OBJECT, description="A searchset Bundle."),
        400: _outcome("a bad search parameter."),
        **UNAUTHENTICATED,
    },
)
class ObservationSearchView(FhirView):
    """Readings the user may see as a searchset Bundle of Observations, newest first, with paging links."""

    operation_id = "fhir_observation_search"

    def get(self, request: Request) -> Response:
        search = parse_observation_search(request.query_params)
        readings = (
            Reading.objects.for_user(request.user)
            .annotate(effective_end=Coalesce("ended_at", "recorded_at"))
            .filter(*search.filters)
            .select_related("metric_type")
            .order_by("-recorded_at", "-id")
        )
        total = readings.count()
        offset = (search.page - 1) * search.count
        page = list(readings[offset : offset + search.count]) if search.count and offset < total else []
        self.log_patient_access(
            list(dict.fromkeys((reading.user_id, "") for reading in page)), action=AccessAction.LIST, resource="reading"
        )
        return Response(
            fhir.searchset_bundle(readings=page, total=total, base_url=self.base_url(), links=self.links(search, total))
        )

    def links(self, search: ObservationSearch, total: int) -> dict[str, str]:
        url = self.request.build_absolute_uri()
        links = {"self": url}
        if search.count and search.page * search.count < total:
            links["next"] = replace_query_param(url, "page", search.page + 1)
        if search.page > 1:
            links["previous"] = (
                remove_query_param(url, "page")
                if search.page == 2
                else replace_query_param(url, "page", search.page - 1)
            )
        return links


@extend_schema(
    tags=["fhir"],
    parameters=[RESOURCE_ID],
    responses={
        200: OpenApiResponse(OpenApiTypes.OBJECT, description="An Observation."),
        **UNAUTHENTICATED,
        404: _outcome("no such Observation for you."),
    },
)
class ObservationReadView(FhirView):
    """One reading as an Observation; another patient's, out of the user's reach, is 404."""

    operation_id = "fhir_observation_read"

    def get(self, request: Request, pk: str) -> Response:
        reading_id = _uuid_or_none(pk)
        reading = (
            Reading.objects.for_user(request.user).select_related("metric_type").filter(pk=reading_id).first()
            if reading_id
            else None
        )
        if reading is None:
            raise exceptions.NotFound(f"Observation/{pk} is not known.")
        self.log_patient_access([(reading.user_id, str(reading.pk))], action=AccessAction.READ, resource="reading")
        return Response(fhir.observation_resource(reading))


@extend_schema(
    tags=["fhir"],
    parameters=[RESOURCE_ID],
    responses={
        200: OpenApiResponse(OpenApiTypes.OBJECT, description="A Patient."),
        **UNAUTHENTICATED,
        404: _outcome("no such Patient for you."),
    },
)
class PatientReadView(FhirView):
    """A patient the user may see for health metrics (themselves, a consenting patient), as a Patient."""

    operation_id = "fhir_patient_read"

    def get(self, request: Request, pk: str) -> Response:
        patient_id = _uuid_or_none(pk)
        patient: User | None = (
            visible_patients(request.user, Scope.METRICS).select_related("profile").filter(pk=patient_id).first()
            if patient_id
            else None
        )
        if patient is None:
            raise exceptions.NotFound(f"Patient/{pk} is not known.")
        self.log_patient_access([(patient.pk, str(patient.pk))], action=AccessAction.READ, resource="user")
        return Response(fhir.patient_resource(patient))


@extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The CapabilityStatement.")})
class MetadataView(FhirView):
    """What this FHIR server answers; public, as FHIR clients read it before they sign in."""

    operation_id = "fhir_metadata"
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response(fhir.capability_statement(base_url=self.base_url(), published=PUBLISHED))
