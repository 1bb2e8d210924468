"""The health_metrics app's entries in the outsider registry (tests/test_outsider.py says what each key means).

The export routes, FHIR and the admin vitals page move to the records app, and their entries with them
(into records/tests/outsider.py).
"""

from datetime import date, timedelta

from django.core.files.base import ContentFile
from django.utils import timezone

from health_metrics.models import AlertRule, DailyHealthScore, DailySummary, ExportJob, HealthAlert
from health_metrics.tests.factories import ReadingFactory, TargetFactory

EXPORT_SECRET = "owner-export-file-7f3a"  # the content of the owner's export file, which must never be served


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


def _export_job(owner):
    return ExportJob.objects.create(
        requested_by=owner, user=owner, format="csv", start_date=date(2026, 1, 1), end_date=date(2026, 1, 31)
    )


def _finished_export(owner):
    job = _export_job(owner)
    job.file.save("owner.csv", ContentFile(EXPORT_SECRET.encode()), save=False)
    job.status, job.finished_at, job.size_bytes, job.row_count = "done", timezone.now(), len(EXPORT_SECRET), 1
    job.save()
    return job


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


TODAY = timezone.localdate()  # the export window: the last week

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
    "export-job-list": {"make": _export_job, "patient_query": True},
    "export-job-detail": {
        "make": _finished_export,
        "no_control": "an export job is its requester's and its patient's; a consented clinician asks for their own",
    },
    "export-job-download": {
        "make": _finished_export,
        "secret": EXPORT_SECRET,
        "no_control": "an export job is its requester's and its patient's; a consented clinician asks for their own",
    },
    "health-metrics-export": {
        "make": lambda owner: ReadingFactory(user=owner, notes="owner-reading-note-51c2"),
        "secret": "owner-reading-note-51c2",
        "patient_query": True,
        "query": {
            "format": "csv",
            "start_date": (TODAY - timedelta(days=6)).isoformat(),
            "end_date": TODAY.isoformat(),
        },
    },
    # FHIR R4 (outside /api/v1/, FHIR's own error shape).
    "fhir:observation-search": {
        "make": lambda owner: ReadingFactory(user=owner),
        "scope": "metrics",
        "query_with_patient": True,  # FHIR search: ?patient= narrows to the patients one may see (empty Bundle)
    },
    "fhir:observation-read": {"make": lambda owner: ReadingFactory(user=owner), "scope": "metrics"},
    "fhir:patient-read": {"make": lambda owner: owner, "scope": "metrics"},
}

NOT_PATIENT_SCOPED = {
    "metric-type-list": "the public metric catalog",
    "metric-type-detail": "the public metric catalog",
    "fhir:metadata": "the public CapabilityStatement",
}

ADMIN_MODELS = {
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
ADMIN_VIEWS = {
    "health_metrics_patient_vitals": {"args": lambda owner: [owner.pk], "scope": "metrics"},
}

OWNER_DATA = {
    "health_metrics.exportjob": "user",
    "health_metrics.periodsummary": "user",
}
