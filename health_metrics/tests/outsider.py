"""The health_metrics app's entries in the outsider registry (tests/test_outsider.py says what each key means)."""

from datetime import timedelta

from django.utils import timezone

from health_metrics.models import AlertRule, DailyHealthScore, DailySummary, HealthAlert
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


def _rule_override(owner):
    return AlertRule.objects.create(user=owner, metric_type_id=9, warn_low=60)


def _daily_summary(owner):
    day = timezone.localdate()
    return DailySummary.objects.create(
        user=owner, metric_type_id=2, local_date=day, count=1, min=72, max=72, mean=72, median=72, sum=72
    )


def _health_score(owner):
    return DailyHealthScore.objects.create(user=owner, local_date=timezone.localdate() - timedelta(days=1), score=81)


def _reading_body(owner, actor):
    """A reading that names the owner every way a client could try; it can only ever be the caller's."""
    at = (timezone.now() - timedelta(minutes=5)).isoformat()
    return {
        "metric_type": "heart_rate",
        "value": 64,
        "recorded_at": at,
        "user": str(owner.pk),
        "patient": str(owner.pk),
    }


API_ROUTES = {
    "reading-list": {
        "make": lambda owner: ReadingFactory(user=owner),
        "patient_query": True,
        "post": _reading_body,
    },
    "reading-detail": {"make": lambda owner: ReadingFactory(user=owner), "body": {"value": 199, "notes": "changed"}},
    "reading-bulk-create": {
        "make": lambda owner: ReadingFactory(user=owner),
        "post": lambda owner, actor: {"patient": str(owner.pk), "readings": [_reading_body(owner, actor)]},
    },
    "reading-stats": {"make": lambda owner: ReadingFactory(user=owner), "patient_query": True},
    "reading-changes": {"make": lambda owner: ReadingFactory(user=owner), "patient_query": True},
    "target-changes": {"make": lambda owner: TargetFactory(user=owner), "patient_query": True},
    "reading-summary": {
        "make": lambda owner: ReadingFactory(user=owner),
        "patient_query": True,
        "query": {"metric_type": "heart_rate"},
    },
    "reading-trends": {
        "make": lambda owner: ReadingFactory(user=owner),
        "patient_query": True,
        "query": {"metric_type": "heart_rate"},
    },
    "data-source-list": {"make": lambda owner: app_data_source(user=owner), "patient_query": True},
    "data-source-detail": {
        "make": lambda owner: app_data_source(user=owner),
        "body": {"priority": 99, "name": "renamed by an outsider"},
    },
    "target-list": {
        "make": lambda owner: TargetFactory(user=owner),
        "patient_query": True,
        "post": lambda owner, actor: {
            "patient": str(owner.pk),
            "user": str(owner.pk),
            "metric_type": "sleep_duration",
            "kind": "at_least",
            "target_value": 7,
        },
    },
    "target-detail": {"make": lambda owner: TargetFactory(user=owner), "body": {"target_value": 1}},
    "health-alert-list": {"make": _health_alert, "patient_query": True},
    "health-alert-detail": {"make": _health_alert},
    "health-alert-acknowledge": {"make": _health_alert},
    "alert-rule-list": {
        "make": _rule_override,
        "patient_query": True,
        # An override for the owner, by someone who may not see them: the patient field refuses it.
        "post": lambda owner, actor: {"patient": str(owner.pk), "metric_type": "blood_glucose", "warn_low": 65},
        "post_status": 400,
    },
    "alert-rule-detail": {"make": _rule_override, "body": {"warn_low": 10}},
    "alert-rule-defaults": {"make": _rule_override, "patient_query": True},
    "health-score-list": {"make": _health_score, "patient_query": True},
}

NOT_PATIENT_SCOPED = {
    "metric-type-list": "the public metric catalog",
    "metric-type-detail": "the public metric catalog",
}

ADMIN_MODELS = {
    "health_metrics.datasource": {"make": lambda owner: app_data_source(user=owner)},
    "health_metrics.reading": {"make": lambda owner: ReadingFactory(user=owner)},
    "health_metrics.dailysummary": {"make": _daily_summary},
    "health_metrics.target": {"make": lambda owner: TargetFactory(user=owner)},
    "health_metrics.dailyhealthscore": {"make": _health_score},
    "health_metrics.healthalert": {"make": _health_alert},
    # Only the patient's overrides; the defaults (no patient) are the catalog's, visible to any clinician.
    "health_metrics.alertrule": {"make": _rule_override},
}

ADMIN_EXEMPT: dict[str, str] = {}

ADMIN_STAFF_ONLY = {
    "health_metrics.metrictype": "the public metric catalog (read-only; in the API for everyone)",
}

# Admin pages beyond a ModelAdmin's standard ones, by URL name: how to point one at the owner.
OWNER_DATA = {
    "health_metrics.periodsummary": "user",
}
