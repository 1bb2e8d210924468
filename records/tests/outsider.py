"""The records app's entries in the outsider registry (tests/test_outsider.py says what each key means)."""

from datetime import date, timedelta

from django.core.files.base import ContentFile
from django.utils import timezone

from appointments.tests.factories import AppointmentFactory
from health_metrics.tests.factories import ReadingFactory
from medications.tests.factories import MedicationPlanFactory
from records.models import ExportJob

PLAN_SECRET = "owner-fhir-instructions-4b8e"  # the owner's plan instructions (Dosage.patientInstruction)
EXPORT_SECRET = "owner-export-file-7f3a"  # the content of the owner's export file, which must never be served
TODAY = timezone.localdate()  # the export window: the last week


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


def _plan(owner):
    return MedicationPlanFactory(patient=owner, instructions=PLAN_SECRET)


API_ROUTES = {
    "dashboard": {"make": lambda owner: ReadingFactory(user=owner, metric_type_id=2), "patient_query": True},
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
    "fhir:appointment-search": {
        "make": lambda owner: AppointmentFactory(patient=owner, reason="owner-fhir-reason-9d1e"),
        "scope": "appointments",
        "secret": "owner-fhir-reason-9d1e",
        "query_with_patient": True,
    },
    "fhir:appointment-read": {
        "make": lambda owner: AppointmentFactory(patient=owner, reason="owner-fhir-reason-9d1e"),
        "scope": "appointments",
        "secret": "owner-fhir-reason-9d1e",
    },
    "fhir:medication-request-search": {
        "make": _plan,
        "scope": "medications",
        "secret": PLAN_SECRET,
        "query_with_patient": True,
    },
    "fhir:medication-request-read": {"make": _plan, "scope": "medications", "secret": PLAN_SECRET},
    "fhir:medication-statement-search": {
        "make": _plan,
        "scope": "medications",
        "secret": PLAN_SECRET,
        "query_with_patient": True,
    },
    "fhir:medication-statement-read": {"make": _plan, "scope": "medications", "secret": PLAN_SECRET},
}

NOT_PATIENT_SCOPED = {
    "fhir:metadata": "the public CapabilityStatement",
    "fhir:schedule-search": "providers' schedules (types offered, horizon): the public directory, no patient data",
    "fhir:slot-search": "free slot times only, never who booked the taken ones",
    "fhir:practitioner-read": "a provider's directory entry (name, specialty, languages), as providers/ shows it",
}

ADMIN_MODELS = {
    "records.exportjob": {"make": _export_job},
}

ADMIN_VIEWS = {
    "records_patient_vitals": {"args": lambda owner: [owner.pk], "scope": "metrics"},
}
