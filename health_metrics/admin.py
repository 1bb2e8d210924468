"""Readings and rollups for staff and (scoped) clinicians; the catalog read-only. Health data is read-only here."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from accounts.admin import ClinicianScopedAdmin
from accounts.models import AccessAction, Scope
from accounts.selectors import visible_patients
from config.api import log_patient_access

from .alerts import TRIAGE_ORDER, acknowledge_alert
from .charts import score_chart, vitals_charts
from .models import (
    AlertRule,
    AlertStatus,
    DailyHealthScore,
    DailySummary,
    DataSource,
    HealthAlert,
    MetricType,
    Reading,
    Target,
)
from .services import user_timezone


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(MetricType)
class MetricTypeAdmin(ReadOnlyAdmin):
    list_display = ("id", "code", "display_name", "loinc", "unit", "aggregation", "plausible_min", "plausible_max")
    list_filter = ("aggregation", "value_kind")
    search_fields = ("code", "display_name", "loinc")


@admin.register(Reading)
class ReadingAdmin(ClinicianScopedAdmin, ReadOnlyAdmin):
    list_display = ("recorded_at", "user", "metric_type", "display_value", "unit", "data_source", "is_abnormal")
    list_filter = ("metric_type", "data_source__kind", "is_abnormal", "recorded_at")
    search_fields = ("user__email",)
    list_select_related = ("user", "metric_type", "data_source")
    raw_id_fields = ("user", "data_source")
    date_hierarchy = "recorded_at"
    show_full_result_count = False  # the table is large; no second COUNT(*) per page

    @admin.display(description="unit")
    def unit(self, reading: Reading) -> str:
        return reading.metric_type.unit


@admin.register(DataSource)
class DataSourceAdmin(ClinicianScopedAdmin, ReadOnlyAdmin):
    list_display = ("name", "user", "kind", "priority", "created_at")
    list_filter = ("kind",)
    search_fields = ("user__email", "name")
    list_select_related = ("user",)
    raw_id_fields = ("user",)


@admin.register(DailySummary)
class DailySummaryAdmin(ClinicianScopedAdmin, ReadOnlyAdmin):
    list_display = ("local_date", "user", "metric_type", "count", "min", "max", "mean", "median", "sum")
    list_filter = ("metric_type", "local_date")
    search_fields = ("user__email",)
    list_select_related = ("user", "metric_type")
    date_hierarchy = "local_date"
    show_full_result_count = False


@admin.register(Target)
class TargetAdmin(ClinicianScopedAdmin):
    list_display = (
        "user",
        "metric_type",
        "kind",
        "target_value",
        "target_min",
        "target_max",
        "is_active",
        "start_date",
    )
    list_filter = ("metric_type", "kind", "is_active")
    search_fields = ("user__email",)
    list_select_related = ("user", "metric_type")
    raw_id_fields = ("user",)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return request.user.sees_all_patients and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return request.user.sees_all_patients and super().has_delete_permission(request, obj)


@admin.register(DailyHealthScore)
class DailyHealthScoreAdmin(ClinicianScopedAdmin, ReadOnlyAdmin):
    """Scores per day; also serves the per-patient vitals page (linked from the user's change page)."""

    list_display = ("local_date", "user", "score", "computed_at")
    list_filter = ("local_date",)
    search_fields = ("user__email",)
    list_select_related = ("user",)
    date_hierarchy = "local_date"
    show_full_result_count = False

    def get_urls(self) -> list[URLPattern]:
        vitals = path(
            "patient/<uuid:user_id>/vitals/",
            self.admin_site.admin_view(self.patient_vitals_view),
            name="health_metrics_patient_vitals",
        )
        return [vitals, *super().get_urls()]

    def patient_vitals_view(self, request: HttpRequest, user_id: str) -> TemplateResponse:
        """Charts of the main vitals over 30 or 90 days (`?days=`) from the rollups, and the recent scores.

        Staff see every patient, a clinician only those who granted them the metrics scope: anyone else is 404.
        A look at someone else's vitals is written to the access log.
        """
        patient = visible_patients(request.user, Scope.METRICS).select_related("profile").filter(pk=user_id).first()
        if patient is None:
            raise Http404("No such patient.")
        days = 90 if request.GET.get("days") == "90" else 30
        today = timezone.localdate(timezone=user_timezone(patient))
        scores = list(
            DailyHealthScore.objects.filter(user=patient, local_date__gt=today - timedelta(days=days)).order_by(
                "-local_date"
            )
        )
        log_patient_access(request, [(patient.pk, "")], action=AccessAction.READ, resource="patient-vitals")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Vitals of {patient.get_full_name() or patient.email}",
            "patient": patient,
            "days": days,
            "day_choices": (30, 90),
            "today": today,
            "score_chart": score_chart(scores=scores, days=days, today=today),
            "charts": vitals_charts(patient=patient, days=days, today=today),
            "scores": scores,
        }
        return TemplateResponse(request, "admin/health_metrics/patient_vitals.html", context)


# --- Alert triage -------------------------------------------------------------------------------


class TriageStatusFilter(admin.SimpleListFilter):
    """Open alerts by default: the triage list, not the archive ("All" is one click away)."""

    title = "status"
    parameter_name = "status"
    default = AlertStatus.OPEN

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:  # noqa: ANN001
        return [*AlertStatus.choices, ("all", "All")]

    def choices(self, changelist):  # noqa: ANN001, ANN201
        chosen = self.value() or self.default
        for value, label in self.lookup_choices:
            yield {
                "selected": chosen == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request: HttpRequest, queryset):  # noqa: ANN001, ANN201
        chosen = self.value() or self.default
        return queryset if chosen == "all" else queryset.filter(status=chosen)


@admin.register(HealthAlert)
class HealthAlertAdmin(ClinicianScopedAdmin, ReadOnlyAdmin):
    """Triage: open alerts of the clinician's consented patients, open and critical first, newest first."""

    list_display = ("severity_badge", "status", "user", "metric_type", "message", "started_at", "acknowledged_by")
    list_filter = (TriageStatusFilter, "severity", "direction", "metric_type")
    search_fields = ("user__email", "message")
    list_select_related = ("user", "metric_type", "acknowledged_by")
    date_hierarchy = "started_at"
    actions = ["acknowledge"]
    readonly_fields = ("readings_list",)
    exclude = ("readings",)

    def get_ordering(self, request: HttpRequest) -> tuple:
        return TRIAGE_ORDER

    @admin.display(description="severity", ordering="severity")
    def severity_badge(self, alert: HealthAlert) -> str:
        colour = "#ba2121" if alert.severity == "critical" else "#b7791f"
        return format_html('<strong style="color:{}">{}</strong>', colour, alert.get_severity_display())

    @admin.display(description="readings")
    def readings_list(self, alert: HealthAlert) -> str:
        rows = alert.readings.order_by("recorded_at")
        return format_html_join(", ", "{} at {:%Y-%m-%d %H:%M} UTC", ((r.display_value, r.recorded_at) for r in rows))

    @admin.action(description="Acknowledge the selected alerts")
    def acknowledge(self, request: HttpRequest, queryset) -> None:  # noqa: ANN001
        alerts = list(queryset.filter(acknowledged_at__isnull=True))
        for alert in alerts:
            acknowledge_alert(alert=alert, by=request.user)
        entries = [(alert.user_id, str(alert.pk)) for alert in alerts]
        log_patient_access(request, entries, action=AccessAction.UPDATE, resource="healthalert")
        self.message_user(request, f"Acknowledged {len(alerts)} alert(s).")


@admin.register(AlertRule)
class AlertRuleAdmin(ClinicianScopedAdmin):
    """Defaults (no patient) and per-patient overrides; clinicians see their consented patients' overrides."""

    list_display = ("metric_type", "kind", "user", "warn_low", "warn_high", "critical_low", "critical_high", "version")
    list_filter = ("kind", "is_active", "metric_type")
    search_fields = ("user__email",)
    list_select_related = ("user", "metric_type")
    raw_id_fields = ("user", "created_by")
    readonly_fields = ("version",)
