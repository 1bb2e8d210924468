from datetime import date

from django.utils import timezone

from health_metrics.models import AlertRule, ExportJob, HealthAlert
from health_metrics.services import app_data_source
from health_metrics.tests.factories import ReadingFactory, TargetFactory


def _health_alert(owner, **fields):
    rule = AlertRule.objects.get(user=None, metric_type_id=9, kind="threshold")
    now = timezone.now()
    values = {
        "metric_type_id": 9,
        "rule": rule,
        "rule_version": rule.version,
        "severity": "critical",
        "direction": "low",
        "message": "Blood glucose below 54 mg/dL.",
        "value": 50,
        "started_at": now,
        "last_reading_at": now,
    }
    return HealthAlert.objects.create(user=owner, **(values | fields))


OUTSIDER_FACTORIES = {
    "health-alert": _health_alert,
    "alert-rule": lambda owner: AlertRule.objects.create(user=owner, metric_type_id=9, warn_low=60),
    "reading": lambda owner: ReadingFactory(user=owner),
    "data-source": lambda owner: app_data_source(user=owner),
    "target": lambda owner: TargetFactory(user=owner),
    "export-job": lambda owner: ExportJob.objects.create(
        requested_by=owner, user=owner, format="csv", start_date=date(2026, 1, 1), end_date=date(2026, 1, 31)
    ),
}
