"""The admin's cross-domain pages: a patient's vitals charts, alert triage, and export jobs.

Scoped like every admin of patient data (accounts.admin.PatientDataAdmin): a clinician sees only the
patients whose grant covers the page's scope, and every look at someone else's record is logged.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from accounts.api.base import log_patient_access
from accounts.models import AccessAction
from accounts.selectors import user_timezone
from health_metrics.admin import HealthDataAdmin, ReadOnlyAdmin
from health_metrics.alerts import TRIAGE_ORDER, acknowledge_alert
from health_metrics.models import AlertStatus, DailyHealthScore, HealthAlert

from .charts import score_chart, vitals_charts
from .models import ExportJob


@admin.register(ExportJob)
class ExportJobAdmin(HealthDataAdmin, ReadOnlyAdmin):
    """Export jobs (read-only); also serves the per-patient vitals page (linked from the user's change page)."""

    list_display = ("created_at", "user", "format", "status", "start_date", "end_date", "row_count", "finished_at")
    list_filter = ("format", "status")
    search_fields = ("user__email",)
    list_select_related = ("user",)
    date_hierarchy = "created_at"

    def get_urls(self) -> list[URLPattern]:
        vitals = path(
            "patient/<uuid:user_id>/vitals/",
            self.admin_site.admin_view(self.patient_vitals_view),
            name="records_patient_vitals",
        )
        return [vitals, *super().get_urls()]

    def patient_vitals_view(self, request: HttpRequest, user_id: str) -> TemplateResponse:
        """Charts of the main vitals over 30 or 90 days (`?days=`) from the rollups, and the recent scores.

        Staff see every patient, a clinician only those who granted them the metrics scope: anyone else is 404.
        A look at someone else's vitals is written to the access log.
        """
        patient = self.visible_patients(request).select_related("profile").filter(pk=user_id).first()
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
        return TemplateResponse(request, "admin/records/patient_vitals.html", context)


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
class HealthAlertAdmin(HealthDataAdmin, ReadOnlyAdmin):
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
