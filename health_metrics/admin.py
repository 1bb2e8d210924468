"""Readings and rollups for staff and (scoped) clinicians; the catalog read-only. Health data is read-only here."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from accounts.admin import PatientDataAdmin
from accounts.models import Scope

from .models import AlertRule, DailyHealthScore, DailySummary, DataSource, MetricType, Reading, Target


class HealthDataAdmin(PatientDataAdmin):
    """A patient's health data (`user`), under the metrics scope."""

    access_scope = Scope.METRICS


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
class ReadingAdmin(HealthDataAdmin, ReadOnlyAdmin):
    list_display = ("recorded_at", "user", "metric_type", "display_value", "unit", "data_source", "is_abnormal")
    list_filter = ("metric_type", "data_source__kind", "is_abnormal", "recorded_at")
    search_fields = ("user__email",)
    list_select_related = ("user", "metric_type", "data_source")
    raw_id_fields = ("user", "data_source")
    date_hierarchy = "recorded_at"
    show_full_result_count = False  # the table is large; no second COUNT(*) per page

    @admin.display(description="unit")
    def unit(self, reading: Reading) -> str:
        return reading.metric_type.unit_label or reading.metric_type.unit


@admin.register(DataSource)
class DataSourceAdmin(HealthDataAdmin, ReadOnlyAdmin):
    list_display = ("name", "user", "kind", "priority", "created_at")
    list_filter = ("kind",)
    search_fields = ("user__email", "name")
    list_select_related = ("user",)
    raw_id_fields = ("user",)


@admin.register(DailySummary)
class DailySummaryAdmin(HealthDataAdmin, ReadOnlyAdmin):
    list_display = ("local_date", "user", "metric_type", "count", "min", "max", "mean", "median", "sum")
    list_filter = ("metric_type", "local_date")
    search_fields = ("user__email",)
    list_select_related = ("user", "metric_type")
    date_hierarchy = "local_date"
    show_full_result_count = False


@admin.register(Target)
class TargetAdmin(HealthDataAdmin):
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
class DailyHealthScoreAdmin(HealthDataAdmin, ReadOnlyAdmin):
    """Scores per day, with the parts they are made of."""

    list_display = ("local_date", "user", "score", "computed_at")
    list_filter = ("local_date",)
    search_fields = ("user__email",)
    list_select_related = ("user",)
    date_hierarchy = "local_date"
    show_full_result_count = False


@admin.register(AlertRule)
class AlertRuleAdmin(HealthDataAdmin):
    """Defaults (no patient) and per-patient overrides; clinicians see their consented patients' overrides."""

    list_display = ("metric_type", "kind", "user", "warn_low", "warn_high", "critical_low", "critical_high", "version")
    list_filter = ("kind", "is_active", "metric_type")
    search_fields = ("user__email",)
    list_select_related = ("user", "metric_type")
    raw_id_fields = ("user", "created_by")
    readonly_fields = ("version",)
