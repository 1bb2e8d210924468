"""The one API router: every viewset of every app is registered here, under /api/v1/."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from accounts.api.views import AccessLogViewSet, CareTeamGrantViewSet
from appointments.api.schedule import CalendarFeedView, CalendarTokenView, DayView, StatsView, UpcomingView
from appointments.api.views import AppointmentViewSet, ProviderViewSet
from config.api import ApiIndexView
from health_metrics.api.alerts import AlertRuleViewSet, HealthAlertViewSet
from health_metrics.api.scores import DailyHealthScoreViewSet
from health_metrics.api.views import DataSourceViewSet, MetricTypeViewSet, ReadingViewSet, TargetViewSet
from iot_devices.api.views import DeviceAlertViewSet, DeviceViewSet, HeartbeatView, IngestBatchViewSet
from medications.api.views import (
    AdherenceView,
    CatalogViewSet,
    DoseViewSet,
    InteractionCheckView,
    MedicationPlanViewSet,
)
from medications.api.views import StatsView as MedicationStatsView
from notifications.api.views import (
    MessageView,
    NotificationViewSet,
    PhoneConfirmView,
    PhoneVerifyView,
    PhoneView,
    PreferencesView,
    PushDeviceViewSet,
)
from notifications.api.webhooks import WebhookSubscriptionViewSet
from records.api.dashboard import DashboardView
from records.api.exports import ExportJobViewSet, ExportViewSet
from records.api.views import PatientViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False

router.register("care-team", CareTeamGrantViewSet, basename="care-team-grant")
router.register("patients", PatientViewSet, basename="patient")
router.register("access-log", AccessLogViewSet, basename="access-log")
router.register("health-metrics/metric-types", MetricTypeViewSet, basename="metric-type")
router.register("health-metrics/targets", TargetViewSet, basename="target")
router.register("health-metrics/alerts", HealthAlertViewSet, basename="health-alert")
router.register("health-metrics/alert-rules", AlertRuleViewSet, basename="alert-rule")
router.register("health-metrics/exports", ExportJobViewSet, basename="export-job")
router.register("health-metrics/health-score", DailyHealthScoreViewSet, basename="health-score")
router.register("health-metrics/sources", DataSourceViewSet, basename="data-source")
router.register("health-metrics", ReadingViewSet, basename="reading")
router.register("iot-devices/ingest", IngestBatchViewSet, basename="ingest-batch")
router.register("iot-devices/alerts", DeviceAlertViewSet, basename="device-alert")
router.register("iot-devices", DeviceViewSet, basename="device")
router.register("notifications/push-devices", PushDeviceViewSet, basename="push-device")
router.register("notifications/webhooks", WebhookSubscriptionViewSet, basename="webhook-subscription")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("providers", ProviderViewSet, basename="provider")
router.register("appointments", AppointmentViewSet, basename="appointment")
router.register("medications/catalog", CatalogViewSet, basename="medication-catalog")
router.register("medications/doses", DoseViewSet, basename="dose")
router.register("medications", MedicationPlanViewSet, basename="medication")

app_name = "api"
urlpatterns = [
    path("", ApiIndexView.as_view(), name="index"),
    path("", include("accounts.api.urls")),
    path("dashboard/", DashboardView.as_view(), name="dashboard"),
    path("notifications/preferences/", PreferencesView.as_view(), name="notification-preferences"),
    path("notifications/messages/", MessageView.as_view(), name="notification-messages"),
    path("notifications/phone/", PhoneView.as_view(), name="notification-phone"),
    path("notifications/phone/verify/", PhoneVerifyView.as_view(), name="notification-phone-verify"),
    path("notifications/phone/confirm/", PhoneConfirmView.as_view(), name="notification-phone-confirm"),
    path("iot-devices/heartbeat/", HeartbeatView.as_view(), name="device-heartbeat"),
    path("health-metrics/export/", ExportViewSet.as_view({"get": "export"}), name="health-metrics-export"),
    # Appointments: the caller's schedule and calendar feed (appointments/api/schedule.py). The feed's address ends
    # in `.ics` (no slash), as calendar apps expect of a file they subscribe to.
    path("appointments/upcoming/", UpcomingView.as_view(), name="appointment-upcoming"),
    path("appointments/stats/", StatsView.as_view(), name="appointment-stats"),
    path("appointments/day/", DayView.as_view(), name="appointment-day"),
    path("appointments/calendar-token/", CalendarTokenView.as_view(), name="appointment-calendar-token"),
    path("appointments/calendar.ics", CalendarFeedView.as_view(), name="appointment-calendar"),
    # Medications: the checks and summaries beside the plans (medications/api/views.py).
    path("medications/interactions/", InteractionCheckView.as_view(), name="medication-interactions"),
    path("medications/adherence/", AdherenceView.as_view(), name="medication-adherence"),
    path("medications/stats/", MedicationStatsView.as_view(), name="medication-stats"),
    *router.urls,
]
