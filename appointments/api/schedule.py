"""The caller's schedule: upcoming appointments, counts, a provider's day, and the iCalendar feed with its token.

Each answers the caller's own appointments, as patient or as provider (never a granted patient's: those are
`appointments/?patient=`). Reads of patients' appointments by their provider are access-logged, as the list does.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import BooleanField, Case, Count, Prefetch, Q, QuerySet, Value, When
from django.db.models.functions import TruncMonth
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.base import log_patient_access
from accounts.models import AccessAction, Profile, User
from config.inputs import DateField

from .. import calendar
from ..models import ACTIVE_STATUSES, Appointment, AppointmentEvent, AppointmentStatus, Provider
from .serializers import AppointmentSerializer

UPCOMING_STATUSES = (*ACTIVE_STATUSES, AppointmentStatus.CHECKED_IN)


def _own(user: User) -> QuerySet[Appointment]:
    return Appointment.objects.filter(Q(patient=user) | Q(provider=user))


def _with_details(queryset: QuerySet[Appointment]) -> QuerySet[Appointment]:
    events = AppointmentEvent.objects.order_by("at", "id")
    return queryset.select_related("appointment_type", "rescheduled_to").prefetch_related(
        Prefetch("events", queryset=events)
    )


def _log_reads(request: Request, appointments: list[Appointment]) -> None:
    entries = list(dict.fromkeys((a.patient_id, "") for a in appointments))
    log_patient_access(request, entries, action=AccessAction.LIST, resource="appointment")


def _zone_of(user: User) -> str:
    return Profile.objects.filter(user=user).values_list("timezone", flat=True).first() or "UTC"


# --- Upcoming -----------------------------------------------------------------------------------------------------


@extend_schema(tags=["appointments"])
class UpcomingView(generics.ListAPIView):
    """The caller's next appointments (requested, confirmed or checked in, not yet over), soonest first."""

    serializer_class = AppointmentSerializer

    def get_queryset(self) -> QuerySet[Appointment]:
        if getattr(self, "swagger_fake_view", False):
            return Appointment.objects.none()
        now = timezone.now()
        own = _own(self.request.user).filter(status__in=UPCOMING_STATUSES, ends_at__gt=now)
        return _with_details(own).order_by("starts_at", "id")

    def paginate_queryset(self, queryset: QuerySet[Appointment]) -> list | None:
        page = super().paginate_queryset(queryset)
        _log_reads(self.request, list(page if page is not None else queryset))
        return page


# --- Stats --------------------------------------------------------------------------------------------------------


class StatsQuerySerializer(serializers.Serializer):
    start_date = DateField(required=False, help_text="First local day (the caller's profile time zone), included.")
    end_date = DateField(required=False, help_text="Last local day, included.")

    def validate(self, attrs: dict) -> dict:
        start, end = attrs.get("start_date"), attrs.get("end_date")
        if start and end and end < start:
            raise serializers.ValidationError({"end_date": "Must not be before start_date."})
        return attrs


class TypeCountSerializer(serializers.Serializer):
    appointment_type = serializers.UUIDField()
    name = serializers.CharField()
    count = serializers.IntegerField()


class MonthCountSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM, in the caller's time zone.")
    count = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())


class RoleStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField(), help_text="Every status, zero included.")
    by_type = TypeCountSerializer(many=True)
    by_month = MonthCountSerializer(many=True, help_text="Months with appointments, oldest first.")


class StatsSerializer(serializers.Serializer):
    timezone = serializers.CharField()
    start_date = serializers.DateField(allow_null=True)
    end_date = serializers.DateField(allow_null=True)
    as_patient = RoleStatsSerializer()
    as_provider = RoleStatsSerializer()


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def _role_stats(rows: list[dict]) -> dict:
    by_status = dict.fromkeys(AppointmentStatus.values, 0)
    types: dict = {}
    months: dict = defaultdict(lambda: dict.fromkeys(AppointmentStatus.values, 0))
    for row in rows:
        by_status[row["status"]] += row["count"]
        kind = types.setdefault(
            row["appointment_type_id"],
            {"appointment_type": row["appointment_type_id"], "name": row["appointment_type__name"], "count": 0},
        )
        kind["count"] += row["count"]
        months[f"{row['month']:%Y-%m}"][row["status"]] += row["count"]
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_type": sorted(types.values(), key=lambda t: (-t["count"], t["name"])),
        "by_month": [
            {"month": month, "count": sum(counts.values()), "by_status": counts}
            for month, counts in sorted(months.items())
        ],
    }


@extend_schema(tags=["appointments"])
class StatsView(APIView):
    """Counts of the caller's appointments as patient and as provider: by status, by type and by month."""

    @extend_schema(parameters=[StatsQuerySerializer], responses=StatsSerializer)
    def get(self, request: Request) -> Response:
        """Two queries: the caller's time zone, then one grouped count."""
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data.get("start_date"), query.validated_data.get("end_date")
        user = request.user
        zone_name = _zone_of(user)
        zone = ZoneInfo(zone_name)
        own = _own(user)
        if start:
            own = own.filter(starts_at__gte=_local_midnight(start, zone))
        if end:
            own = own.filter(starts_at__lt=_local_midnight(end + timedelta(days=1), zone))
        rows = (
            own.annotate(
                as_patient=Case(
                    When(patient=user, then=Value(True)), default=Value(False), output_field=BooleanField()
                ),
                month=TruncMonth("starts_at", tzinfo=zone),
            )
            .values("as_patient", "status", "appointment_type_id", "appointment_type__name", "month")
            .annotate(count=Count("id"))
            .order_by()
        )
        rows = list(rows)
        body = {
            "timezone": zone_name,
            "start_date": start,
            "end_date": end,
            "as_patient": _role_stats([row for row in rows if row["as_patient"]]),
            "as_provider": _role_stats([row for row in rows if not row["as_patient"]]),
        }
        return Response(StatsSerializer(body).data)


# --- A provider's day ---------------------------------------------------------------------------------------------


class DayQuerySerializer(serializers.Serializer):
    date = DateField(help_text="The local day, in the provider's time zone (YYYY-MM-DD).")


class DaySerializer(serializers.Serializer):
    date = serializers.DateField()
    timezone = serializers.CharField()
    appointments = AppointmentSerializer(many=True, help_text="Every status, by start time.")


@extend_schema(tags=["appointments"])
class DayView(APIView):
    """A provider's appointments on one local day of their time zone (empty for someone who is no provider)."""

    @extend_schema(parameters=[DayQuerySerializer], responses=DaySerializer)
    def get(self, request: Request) -> Response:
        """The day, in the provider's time zone; every status, by start time. A fixed number of queries."""
        query = DayQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        day = query.validated_data["date"]
        user = request.user
        zone_name = Provider.objects.filter(pk=user.pk).values_list("timezone", flat=True).first() or _zone_of(user)
        zone = ZoneInfo(zone_name)
        appointments = list(
            _with_details(
                Appointment.objects.filter(
                    provider=user,
                    starts_at__gte=_local_midnight(day, zone),
                    starts_at__lt=_local_midnight(day + timedelta(days=1), zone),
                )
            ).order_by("starts_at", "id")
        )
        _log_reads(request, appointments)
        body = {"date": day, "timezone": zone_name, "appointments": appointments}
        return Response(DaySerializer(body, context={"request": request}).data)


# --- The calendar feed --------------------------------------------------------------------------------------------


class CalendarTokenSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="The feed's address, the secret included: subscribe to it in a calendar app.")
    token = serializers.CharField(help_text="The secret, shown this once; only its hash is stored.")


@extend_schema(tags=["appointments"])
class CalendarTokenView(APIView):
    """Make, or rotate, the secret of the caller's calendar feed: the old address stops working at once."""

    @extend_schema(request=None, responses={201: CalendarTokenSerializer})
    def post(self, request: Request) -> Response:
        """A new secret feed address, shown once (201)."""
        token = calendar.rotate_token(user=request.user)
        url = request.build_absolute_uri(reverse("api:appointment-calendar")) + f"?token={token}"
        return Response(CalendarTokenSerializer({"url": url, "token": token}).data, status=status.HTTP_201_CREATED)


class CalendarQuerySerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The feed's secret (POST appointments/calendar-token/).")


class FeedNegotiation(BaseContentNegotiation):
    """The feed is made here (text/calendar) and errors are JSON: no `Accept` header from a calendar app is a 406."""

    def select_parser(self, request: Request, parsers: list) -> object:
        return parsers[0]

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


@extend_schema(tags=["appointments"])
class CalendarFeedView(APIView):
    """The caller's appointments as an iCalendar feed (RFC 5545). The secret token is the credential, not a JWT."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    content_negotiation_class = FeedNegotiation

    @extend_schema(
        operation_id="appointments_calendar_feed",
        summary="The calendar feed (iCalendar) of the token's owner",
        auth=[],
        parameters=[CalendarQuerySerializer],
        responses={
            (200, "text/calendar"): OpenApiResponse(
                OpenApiTypes.STR, description="VCALENDAR with one VEVENT per appointment (UID, SEQUENCE, STATUS)."
            ),
            404: OpenApiResponse(description="No feed has this token: never made, rotated, or missing."),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        """The feed of whoever owns the token; 404 for a missing, wrong or rotated token (nothing else is said)."""
        owner = calendar.feed_owner(token=request.query_params.get("token", ""))
        if owner is None:
            raise exceptions.NotFound("No calendar feed has this token.")
        response = HttpResponse(calendar.feed_for(user=owner), content_type="text/calendar; charset=utf-8")
        response["Content-Disposition"] = 'inline; filename="openvitals-appointments.ics"'
        response["Cache-Control"] = "private, no-store"
        response["Referrer-Policy"] = "no-referrer"
        return response
