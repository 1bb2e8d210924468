"""The FHIR R4 read API under /fhir/r4/: Observation, Appointment, MedicationRequest and MedicationStatement search
and read, Patient and Practitioner read, and the providers' public Schedule and free Slot searches.

The same access rule, JWT authentication and access log as /api/v1/; answers are `application/fhir+json`
and errors are OperationOutcome resources. A search is a filter over what the user may see: `patient=`
naming someone the user may not see matches nothing (an empty searchset, as for a patient without
readings), while reading another patient's Observation or Patient by id is 404, as in the REST API.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Prefetch, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
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
from appointments import selectors as appointment_selectors
from appointments.availability import free_slots
from appointments.models import Appointment, AppointmentType, Provider
from config.inputs import check_date, text_error, utc_datetime
from config.renderers import JSONRenderer
from health_metrics.models import MetricType, Reading
from medications.models import MedicationPlan

from .. import fhir

PUBLISHED = datetime(2026, 12, 3, tzinfo=UTC)  # when the capabilities below last changed
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


# The paging parameters of every search (`ObservationSearch.page_of`).
PAGING_PARAMETERS = [
    OpenApiParameter("_count", int, description=f"Page size, default {DEFAULT_COUNT}, at most {MAX_COUNT}."),
    OpenApiParameter("page", int, description="Page number, from 1."),
]


@dataclass
class ObservationSearch:
    """The parsed search: filters to apply, page size and page number."""

    filters: list[Q] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    page: int = 1

    def page_of(self, queryset: Any) -> tuple[list, int]:
        """(this page's rows, the total) of an ordered queryset: one COUNT, then the page's slice if it exists."""
        total = queryset.count()
        offset = (self.page - 1) * self.count
        rows = list(queryset[offset : offset + self.count]) if self.count and offset < total else []
        return rows, total


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


def _check_params(params: Any, supported: set[str]) -> None:
    for name, values in params.lists():  # text PostgreSQL cannot store is no search term either
        for value in [name, *values]:
            error = text_error(value)
            if error is not None:
                raise exceptions.ValidationError({name: [error.message]}, code=error.code)
    unknown = sorted(set(params) - supported)
    if unknown:
        raise exceptions.ValidationError({name: ["This search parameter is not supported."] for name in unknown})


def parse_observation_search(params: Any) -> ObservationSearch:
    _check_params(params, SEARCH_PARAMS)
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
        *PAGING_PARAMETERS,
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
        page, total = search.page_of(readings)
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


@extend_schema(
    tags=["fhir"],
    parameters=[RESOURCE_ID],
    responses={
        200: OpenApiResponse(OpenApiTypes.OBJECT, description="A Practitioner."),
        **UNAUTHENTICATED,
        404: _outcome("no such Practitioner."),
    },
)
class PractitionerReadView(FhirView):
    """A provider as a Practitioner (the directory's public facts), what Appointment and Schedule references
    name. Not patient data: any signed-in user may read it, as providers/ shows it."""

    operation_id = "fhir_practitioner_read"

    def get(self, request: Request, pk: str) -> Response:
        provider_id = _uuid_or_none(pk)
        provider = _providers().filter(pk=provider_id).first() if provider_id else None
        if provider is None:
            raise exceptions.NotFound(f"Practitioner/{pk} is not known.")
        return Response(fhir.practitioner_resource(provider))


@extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The CapabilityStatement.")})
class MetadataView(FhirView):
    """What this FHIR server answers; public, as FHIR clients read it before they sign in."""

    operation_id = "fhir_metadata"
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response(fhir.capability_statement(base_url=self.base_url(), published=PUBLISHED))


# --- Appointments -------------------------------------------------------------------------------------

APPOINTMENT_SEARCH_PARAMS = {"patient", "practitioner", "date", "status", "_count", "page", "_format"}
# FHIR status code -> our statuses (`cancelled` covers both ours that map to it).
STATUS_FROM_FHIR: dict[str, list[str]] = {}
for _ours, _theirs in fhir.APPOINTMENT_STATUS.items():
    STATUS_FROM_FHIR.setdefault(_theirs, []).append(str(_ours))


def _reference_ids(values: list[str], *, name: str, resource: str) -> list[uuid.UUID]:
    """Comma-separated ids, each bare or `<resource>/<id>`: 400 naming the parameter for anything else."""
    ids = []
    for value in ",".join(values).split(","):
        found = _uuid_or_none(value.strip().removeprefix(f"{resource}/"))
        if found is None:
            raise exceptions.ValidationError({name: [f"{value!r} is not a {resource} id (UUID or {resource}/<id>)."]})
        ids.append(found)
    return ids


def _date_bounds(raw: str, name: str) -> tuple[str, date | datetime, date | datetime]:
    """One date parameter as (prefix, start, end) of its implicit range; a 400 naming `name` when it is bad."""
    match = _DATE_VALUE.match(raw.strip().replace(" ", "+"))
    if match is None:
        raise exceptions.ValidationError({name: [f"{raw!r} is not a FHIR date or dateTime."]})
    prefix = match["prefix"] or "eq"
    if prefix not in DATE_PREFIXES:
        raise exceptions.ValidationError(
            {name: [f"{raw!r}: the prefix {prefix!r} is not supported; use eq, gt, lt, ge or le."]}
        )
    try:
        start, end = _date_range(match)
    except ValueError as error:
        raise exceptions.ValidationError({name: [f"{raw!r}: {error}."]}) from None
    return prefix, start, end


def _as_instant(moment: date | datetime, zone: ZoneInfo) -> datetime:
    """A date is its midnight in `zone` (FHIR: a date without a zone is in the server's, here the provider's)."""
    if isinstance(moment, datetime):
        return moment
    return datetime.combine(moment, time(0), tzinfo=zone).astimezone(UTC)


def _appointment_date_filter(raw: str) -> Q:
    """FHIR's Appointment `date` is the start (Appointment.start); a date is a day of the server's zone (UTC)."""
    prefix, start, end = _date_bounds(raw, "date")
    zone = timezone.get_default_timezone()
    start, end = _as_instant(start, zone), _as_instant(end, zone)
    return {
        "eq": Q(starts_at__gte=start, starts_at__lt=end),
        "ge": Q(starts_at__gte=start),
        "gt": Q(starts_at__gte=end),
        "le": Q(starts_at__lt=end),
        "lt": Q(starts_at__lt=start),
    }[prefix]


def _status_filter(value: str) -> Q:
    statuses = []
    for code in value.split(","):
        code = code.strip()
        if code not in STATUS_FROM_FHIR and code not in ("proposed", "arrived", "entered-in-error", "waitlist"):
            raise exceptions.ValidationError({"status": [f"{code!r} is not an Appointment status code."]})
        statuses += STATUS_FROM_FHIR.get(code, [])
    return Q(status__in=statuses)


def parse_appointment_search(params: Any) -> ObservationSearch:
    _check_params(params, APPOINTMENT_SEARCH_PARAMS)
    search = ObservationSearch(
        count=min(_positive_int(params, "_count", DEFAULT_COUNT, minimum=0), MAX_COUNT),
        page=_positive_int(params, "page", 1, minimum=1),
    )
    if params.getlist("patient"):
        search.filters.append(
            Q(patient_id__in=_reference_ids(params.getlist("patient"), name="patient", resource="Patient"))
        )
    if params.getlist("practitioner"):
        ids = _reference_ids(params.getlist("practitioner"), name="practitioner", resource="Practitioner")
        search.filters.append(Q(provider_id__in=ids))
    search.filters += [_appointment_date_filter(value) for value in params.getlist("date")]
    search.filters += [_status_filter(value) for value in params.getlist("status")]
    return search


def _page_links(request: Request, search: ObservationSearch, total: int) -> dict[str, str]:
    url = request.build_absolute_uri()
    links = {"self": url}
    if search.count and search.page * search.count < total:
        links["next"] = replace_query_param(url, "page", search.page + 1)
    if search.page > 1:
        links["previous"] = (
            remove_query_param(url, "page") if search.page == 2 else replace_query_param(url, "page", search.page - 1)
        )
    return links


def _visible_appointments(user: User):  # noqa: ANN202
    """The one access rule: one's own as patient or provider, and consented patients' (the appointments scope)."""
    return Appointment.objects.for_user(user).select_related("patient", "provider", "appointment_type")


@extend_schema(
    tags=["fhir"],
    parameters=[
        OpenApiParameter("patient", str, description="Patient id (or Patient/<id>); comma = OR."),
        OpenApiParameter("practitioner", str, description="The provider's id (or Practitioner/<id>); comma = OR."),
        OpenApiParameter(
            "date",
            str,
            many=True,
            explode=True,
            description="The start; repeatable; prefixes eq, ge, le, gt, lt; a date (UTC day) or dateTime with a zone.",
        ),
        OpenApiParameter(
            "status", str, description="FHIR codes: pending, booked, checked-in, fulfilled, cancelled, noshow."
        ),
        *PAGING_PARAMETERS,
    ],
    responses={
        200: OpenApiResponse(OpenApiTypes.OBJECT, description="A searchset Bundle of Appointments."),
        400: _outcome("a bad search parameter."),
        **UNAUTHENTICATED,
    },
)
class AppointmentSearchView(FhirView):
    """Appointments the user may see (as patient, as provider, or a consenting patient's), latest start first."""

    operation_id = "fhir_appointment_search"

    def get(self, request: Request) -> Response:
        search = parse_appointment_search(request.query_params)
        appointments = _visible_appointments(request.user).filter(*search.filters).order_by("-starts_at", "-id")
        page, total = search.page_of(appointments)
        self.log_patient_access(
            list(dict.fromkeys((a.patient_id, "") for a in page)), action=AccessAction.LIST, resource="appointment"
        )
        return Response(
            fhir.searchset(
                entries=[(f"Appointment/{a.pk}", fhir.appointment_resource(a)) for a in page],
                total=total,
                base_url=self.base_url(),
                links=_page_links(request, search, total),
            )
        )


@extend_schema(
    tags=["fhir"],
    parameters=[RESOURCE_ID],
    responses={
        200: OpenApiResponse(OpenApiTypes.OBJECT, description="An Appointment."),
        **UNAUTHENTICATED,
        404: _outcome("no such Appointment for you."),
    },
)
class AppointmentReadView(FhirView):
    """One appointment; one out of the user's reach is 404."""

    operation_id = "fhir_appointment_read"

    def get(self, request: Request, pk: str) -> Response:
        appointment_id = _uuid_or_none(pk)
        appointment = _visible_appointments(request.user).filter(pk=appointment_id).first() if appointment_id else None
        if appointment is None:
            raise exceptions.NotFound(f"Appointment/{pk} is not known.")
        self.log_patient_access(
            [(appointment.patient_id, str(appointment.pk))], action=AccessAction.READ, resource="appointment"
        )
        return Response(fhir.appointment_resource(appointment))


# --- Medication plans -----------------------------------------------------------------------------------

MEDICATION_SEARCH_PARAMS = {"patient", "status", "_count", "page", "_format"}
# FHIR status code -> our plan statuses; the codes each resource defines that no plan of ours has match nothing.
PLAN_STATUS_FROM_FHIR = {theirs: str(ours) for ours, theirs in fhir.PLAN_STATUS.items()}
UNUSED_STATUS_CODES = {
    "MedicationRequest": {"cancelled", "entered-in-error", "draft", "unknown"},
    "MedicationStatement": {"entered-in-error", "intended", "not-taken", "unknown"},
}


def parse_medication_search(params: Any, *, resource: str) -> ObservationSearch:
    _check_params(params, MEDICATION_SEARCH_PARAMS)
    search = ObservationSearch(
        count=min(_positive_int(params, "_count", DEFAULT_COUNT, minimum=0), MAX_COUNT),
        page=_positive_int(params, "page", 1, minimum=1),
    )
    if params.getlist("patient"):
        search.filters.append(
            Q(patient_id__in=_reference_ids(params.getlist("patient"), name="patient", resource="Patient"))
        )
    for value in params.getlist("status"):
        statuses = []
        for code in value.split(","):
            code = code.strip()
            if code not in PLAN_STATUS_FROM_FHIR and code not in UNUSED_STATUS_CODES[resource]:
                raise exceptions.ValidationError({"status": [f"{code!r} is not a {resource} status code."]})
            if code in PLAN_STATUS_FROM_FHIR:
                statuses.append(PLAN_STATUS_FROM_FHIR[code])
        search.filters.append(Q(status__in=statuses))
    return search


def _visible_plans(user: User):  # noqa: ANN202
    """The one access rule: one's own plans, consented patients' (the medications scope), everyone's for staff."""
    return fhir.plans_for_fhir(MedicationPlan.objects.for_user(user))


def _medication_search_schema(resource: str) -> Any:
    return extend_schema(
        tags=["fhir"],
        parameters=[
            OpenApiParameter("patient", str, description="Patient id (or Patient/<id>); comma = OR."),
            OpenApiParameter(
                "status",
                str,
                description="FHIR codes: active, on-hold, completed, stopped (the plan's status); comma = OR.",
            ),
            *PAGING_PARAMETERS,
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description=f"A searchset Bundle of {resource}s."),
            400: _outcome("a bad search parameter."),
            **UNAUTHENTICATED,
        },
    )


def _medication_read_schema(resource: str) -> Any:
    return extend_schema(
        tags=["fhir"],
        parameters=[RESOURCE_ID],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description=f"A {resource}."),
            **UNAUTHENTICATED,
            404: _outcome(f"no such {resource} for you."),
        },
    )


class _PlanResourceView(FhirView):
    """A medication plan is both a MedicationRequest (what was ordered or planned) and a MedicationStatement (what
    the patient is taking), each with the plan's id; these views differ only in the resource they answer."""

    resource_type: str

    def resource(self, plan: MedicationPlan) -> dict[str, Any]:
        if self.resource_type == "MedicationRequest":
            return fhir.medication_request(plan)
        return fhir.medication_statement(plan, last_taken=plan.last_taken)


class _PlanSearchView(_PlanResourceView):
    def get(self, request: Request) -> Response:
        search = parse_medication_search(request.query_params, resource=self.resource_type)
        plans = _visible_plans(request.user).filter(*search.filters).order_by("-created_at", "-id")
        page, total = search.page_of(plans)
        self.log_patient_access(
            list(dict.fromkeys((plan.patient_id, "") for plan in page)),
            action=AccessAction.LIST,
            resource="medicationplan",
        )
        return Response(
            fhir.searchset(
                entries=[(f"{self.resource_type}/{plan.pk}", self.resource(plan)) for plan in page],
                total=total,
                base_url=self.base_url(),
                links=_page_links(request, search, total),
            )
        )


class _PlanReadView(_PlanResourceView):
    def get(self, request: Request, pk: str) -> Response:
        plan_id = _uuid_or_none(pk)
        plan = _visible_plans(request.user).filter(pk=plan_id).first() if plan_id else None
        if plan is None:
            raise exceptions.NotFound(f"{self.resource_type}/{pk} is not known.")
        self.log_patient_access([(plan.patient_id, str(plan.pk))], action=AccessAction.READ, resource="medicationplan")
        return Response(self.resource(plan))


@_medication_search_schema("MedicationRequest")
class MedicationRequestSearchView(_PlanSearchView):
    """Medication plans the user may see as MedicationRequests, newest first, with paging links."""

    operation_id = "fhir_medication_request_search"
    resource_type = "MedicationRequest"


@_medication_read_schema("MedicationRequest")
class MedicationRequestReadView(_PlanReadView):
    """One medication plan as a MedicationRequest; one out of the user's reach is 404."""

    operation_id = "fhir_medication_request_read"
    resource_type = "MedicationRequest"


@_medication_search_schema("MedicationStatement")
class MedicationStatementSearchView(_PlanSearchView):
    """Medication plans the user may see as MedicationStatements, newest first, with paging links."""

    operation_id = "fhir_medication_statement_search"
    resource_type = "MedicationStatement"


@_medication_read_schema("MedicationStatement")
class MedicationStatementReadView(_PlanReadView):
    """One medication plan as a MedicationStatement (with the last dose taken); one out of reach is 404."""

    operation_id = "fhir_medication_statement_read"
    resource_type = "MedicationStatement"


# --- Providers' schedules and free slots (public to signed-in users: no patient data) --------------------

SCHEDULE_SEARCH_PARAMS = {"actor", "_format"}
SLOT_SEARCH_PARAMS = {"schedule", "start", "service-type", "_format"}
SLOT_DEFAULT_DAYS = 7
SLOT_MAX_DAYS = 31


def _providers() -> Any:
    active_types = AppointmentType.objects.filter(active=True).order_by("name")
    return appointment_selectors.providers().prefetch_related(Prefetch("appointment_types", queryset=active_types))


@extend_schema(
    tags=["fhir"],
    parameters=[OpenApiParameter("actor", str, description="The provider: Practitioner/<id> (or the id); comma = OR.")],
    responses={
        200: OpenApiResponse(OpenApiTypes.OBJECT, description="A searchset Bundle of Schedules."),
        400: _outcome("a bad search parameter."),
        **UNAUTHENTICATED,
    },
)
class ScheduleSearchView(FhirView):
    """Each provider taking bookings has one Schedule (its id is the provider's): the types offered, the horizon."""

    operation_id = "fhir_schedule_search"

    def get(self, request: Request) -> Response:
        _check_params(request.query_params, SCHEDULE_SEARCH_PARAMS)
        providers = _providers()
        if request.query_params.getlist("actor"):
            ids = _reference_ids(request.query_params.getlist("actor"), name="actor", resource="Practitioner")
            providers = providers.filter(pk__in=ids)
        now = timezone.now()
        schedules = [
            fhir.schedule_resource(provider, types=provider.appointment_types.all(), now=now) for provider in providers
        ]
        return Response(
            fhir.searchset(
                entries=[(f"Schedule/{s['id']}", s) for s in schedules],
                total=len(schedules),
                base_url=self.base_url(),
                links={"self": request.build_absolute_uri()},
            )
        )


def _slot_window(raw_values: list[str]) -> list[tuple[str, date | datetime, date | datetime]]:
    return [_date_bounds(raw, "start") for raw in raw_values]


@extend_schema(
    tags=["fhir"],
    parameters=[
        OpenApiParameter("schedule", str, description="Required: Schedule/<provider id> (or the id)."),
        OpenApiParameter(
            "start",
            str,
            many=True,
            explode=True,
            description=(
                "The slot's start: repeatable, prefixes eq, ge, le, gt, lt; a date (the provider's local day) or "
                f"dateTime with a zone. Default: from now, {SLOT_DEFAULT_DAYS} days; at most {SLOT_MAX_DAYS} days."
            ),
        ),
        OpenApiParameter(
            "service-type", str, description="An appointment type id (or <system>|<id>); default: every active type."
        ),
    ],
    responses={
        200: OpenApiResponse(OpenApiTypes.OBJECT, description="A searchset Bundle of free Slots."),
        400: _outcome("a bad search parameter."),
        **UNAUTHENTICATED,
    },
)
class SlotSearchView(FhirView):
    """A provider's free slots per appointment type, from the one availability function (status `free`).

    Booked time is not shown as `busy` slots: who booked it is patient data, and when is not needed to book.
    """

    operation_id = "fhir_slot_search"

    def get(self, request: Request) -> Response:
        params = request.query_params
        _check_params(params, SLOT_SEARCH_PARAMS)
        bounds = _slot_window(params.getlist("start"))
        type_ids = None
        if params.getlist("service-type"):
            type_ids = []
            for token in ",".join(params.getlist("service-type")).split(","):
                system, _, code = token.strip().rpartition("|")
                type_id = _uuid_or_none(code)
                if type_id is None or system not in ("", fhir.APPOINTMENT_TYPE_SYSTEM):
                    raise exceptions.ValidationError(
                        {
                            "service-type": [
                                f"{token!r} is not an appointment type id (or {fhir.APPOINTMENT_TYPE_SYSTEM}|<id>)."
                            ]
                        }
                    )
                type_ids.append(type_id)
        if not params.getlist("schedule"):
            raise exceptions.ValidationError({"schedule": ["Name the provider's schedule: Schedule/<id>."]})
        schedule_ids = _reference_ids(params.getlist("schedule"), name="schedule", resource="Schedule")
        now = timezone.now()
        entries = []
        for provider in _providers().filter(pk__in=schedule_ids):
            entries += self.slots(provider, bounds=bounds, type_ids=type_ids, now=now)
        entries.sort(key=lambda entry: (entry[1]["start"], entry[0]))
        return Response(
            fhir.searchset(
                entries=entries,
                total=len(entries),
                base_url=self.base_url(),
                links={"self": request.build_absolute_uri()},
            )
        )

    def slots(self, provider: Provider, *, bounds: list, type_ids: list | None, now: datetime) -> list:
        zone = ZoneInfo(provider.timezone)
        lower, upper = now, None
        for prefix, start, end in bounds:
            start, end = _as_instant(start, zone), _as_instant(end, zone)
            if prefix in ("ge", "eq"):
                lower = max(lower, start)
            if prefix == "gt":
                lower = max(lower, end)
            if prefix in ("le", "eq"):
                upper = end if upper is None else min(upper, end)
            if prefix == "lt":
                upper = start if upper is None else min(upper, start)
        first_day = lower.astimezone(zone).date()
        if upper is None:
            upper = _as_instant(first_day + timedelta(days=SLOT_DEFAULT_DAYS), zone)
        if upper <= lower:
            return []
        last_day = (upper - timedelta(microseconds=1)).astimezone(zone).date()
        if (last_day - first_day).days + 1 > SLOT_MAX_DAYS:
            raise exceptions.ValidationError({"start": [f"At most {SLOT_MAX_DAYS} days of slots at a time."]})
        types = [t for t in provider.appointment_types.all() if type_ids is None or t.pk in type_ids]
        if not types:
            return []
        zone, hours, overrides = appointment_selectors.schedule(
            provider=provider, start_date=first_day, end_date=last_day
        )
        blocked = appointment_selectors.blocked_ranges(
            provider=provider, since=lower - timedelta(days=1), until=upper + timedelta(days=1)
        )
        entries = []
        for kind in types:
            starts = free_slots(
                zone=zone,
                hours=hours,
                overrides=overrides,
                blocked=blocked,
                rules=appointment_selectors.rules_for(provider=provider, appointment_type=kind),
                now=now,
                start_date=first_day,
                end_date=last_day,
            )
            for start in starts:
                if lower <= start < upper:
                    slot = fhir.slot_resource(provider=provider, appointment_type=kind, start=start, zone=zone)
                    entries.append((f"Slot/{slot['id']}", slot))
        return entries
