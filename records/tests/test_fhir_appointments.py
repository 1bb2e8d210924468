"""FHIR R4 Appointment (read, search), Schedule and Slot (providers' public availability), and appointments in the
FHIR export: shapes validated with fhir.resources' R4B models (see records/fhir.py), access, the access log, errors.
"""

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.schedule import Schedule
from fhir.resources.R4B.slot import Slot
from rest_framework.test import APIClient

from accounts.models import AccessLog
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory, UserFactory
from appointments.models import AppointmentStatus, DateOverride, OverrideKind
from appointments.tests.factories import AppointmentFactory, AppointmentTypeFactory, ProviderFactory, a_slot
from conftest import bearer
from health_metrics.tests.factories import ReadingFactory
from records import fhir
from records.exports import export_appointments, fhir_document

pytestmark = pytest.mark.django_db

BASE = "/fhir/r4"
APPOINTMENTS = f"{BASE}/Appointment"


def fhir_json(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/fhir+json"
    return response.json()


def ids(bundle: dict) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def log_rows(actor):
    return list(
        AccessLog.objects.filter(actor=actor)
        .order_by("id")
        .values_list("patient_id", "resource", "action", "object_id")
    )


@pytest.fixture
def visit(user):
    kind = AppointmentTypeFactory(name="Follow-up", duration_minutes=30)
    return AppointmentFactory(
        patient=user,
        appointment_type=kind,
        reason="Knee pain",
        notes="clinical-note-secret",
        diagnosis="diagnosis-secret",
        plan="plan-secret",
    )


# --- The resource -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (AppointmentStatus.REQUESTED, "pending"),
        (AppointmentStatus.CONFIRMED, "booked"),
        (AppointmentStatus.CHECKED_IN, "checked-in"),
        (AppointmentStatus.COMPLETED, "fulfilled"),
        (AppointmentStatus.CANCELLED, "cancelled"),
        (AppointmentStatus.NO_SHOW, "noshow"),
        (AppointmentStatus.RESCHEDULED, "cancelled"),
    ],
)
def test_every_status_maps_to_a_fhir_appointment_status_and_validates(visit, status, code):
    visit.status = status
    resource = fhir.appointment_resource(visit)
    FhirAppointment.model_validate(resource)
    assert resource["status"] == code
    assert ("cancelationReason" in resource) == (status == AppointmentStatus.RESCHEDULED)


def test_an_appointment_has_its_participants_times_type_and_reason_but_no_clinical_fields(as_user, user, visit):
    body = fhir_json(as_user.get(f"{APPOINTMENTS}/{visit.pk}"))
    FhirAppointment.model_validate(body)
    assert body["id"] == str(visit.pk)
    assert body["status"] == "pending"
    assert body["start"] == visit.starts_at.isoformat()
    assert body["end"] == visit.ends_at.isoformat()
    assert body["minutesDuration"] == 30
    assert body["serviceType"][0]["coding"][0] == {
        "system": fhir.APPOINTMENT_TYPE_SYSTEM,
        "code": str(visit.appointment_type_id),
        "display": "Follow-up",
    }
    assert body["appointmentType"]["coding"][0]["code"] == "in-person"
    assert body["reasonCode"] == [{"text": "Knee pain"}]
    patient, provider = body["participant"]
    assert patient["actor"]["reference"] == f"Patient/{user.pk}"
    assert patient["status"] == "accepted"
    assert provider["actor"]["reference"] == f"Practitioner/{visit.provider_id}"
    assert provider["status"] == "needs-action"  # a request waits for the provider
    text = str(body)
    for secret in ("clinical-note-secret", "diagnosis-secret", "plan-secret"):
        assert secret not in text


def test_a_telemedicine_visit_is_virtual(user):
    kind = AppointmentTypeFactory(telemedicine=True)
    visit = AppointmentFactory(patient=user, appointment_type=kind, telemedicine=True, video_link="https://v.example/x")
    resource = fhir.appointment_resource(visit)
    FhirAppointment.model_validate(resource)
    assert resource["appointmentType"]["coding"][0]["code"] == "virtual"
    assert "v.example" not in str(resource)


# --- Search and read: who sees what ---------------------------------------------------------------------


def test_the_search_is_a_valid_bundle_of_the_users_appointments_latest_first(as_user, user):
    mine = [AppointmentFactory(patient=user, starts_at=a_slot(days=d)) for d in (2, 4, 3)]
    AppointmentFactory()  # someone else's
    body = fhir_json(as_user.get(APPOINTMENTS))
    Bundle.model_validate(body)
    assert body["total"] == 3
    assert ids(body) == [str(a.pk) for a in sorted(mine, key=lambda a: a.starts_at, reverse=True)]
    assert body["entry"][0]["fullUrl"].startswith("http://testserver/fhir/r4/Appointment/")
    assert log_rows(user) == []


def test_the_provider_sees_their_own_bookings_and_is_logged(user, visit):
    provider = visit.provider
    client = bearer(APIClient(), provider)
    body = fhir_json(client.get(APPOINTMENTS, {"practitioner": f"Practitioner/{provider.pk}"}))
    assert ids(body) == [str(visit.pk)]
    fhir_json(client.get(f"{APPOINTMENTS}/{visit.pk}"))
    assert log_rows(provider) == [
        (user.pk, "appointment", "list", ""),
        (user.pk, "appointment", "read", str(visit.pk)),
    ]


def test_a_clinician_with_the_appointments_scope_sees_them_and_is_logged(user, clinician, visit):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["appointments"])
    client = bearer(APIClient(), clinician)
    body = fhir_json(client.get(APPOINTMENTS, {"patient": str(user.pk)}))
    assert ids(body) == [str(visit.pk)]
    assert fhir_json(client.get(f"{APPOINTMENTS}/{visit.pk}"))["reasonCode"] == [{"text": "Knee pain"}]
    assert log_rows(clinician) == [
        (user.pk, "appointment", "list", ""),
        (user.pk, "appointment", "read", str(visit.pk)),
    ]


@pytest.mark.parametrize("actor_kind", ["patient", "clinician_without_consent", "clinician_metrics_only", "revoked"])
def test_an_outsider_finds_no_appointment_of_another_patient(user, visit, actor_kind):
    if actor_kind == "patient":
        actor = UserFactory()
    else:
        actor = ClinicianFactory()
        if actor_kind == "clinician_metrics_only":
            CareTeamGrantFactory(patient=user, clinician=actor, scopes=["metrics", "medications"])
        elif actor_kind == "revoked":
            CareTeamGrantFactory(patient=user, clinician=actor, scopes=["appointments"], revoked_at=timezone.now())
    client = bearer(APIClient(), actor)
    outcome = fhir_json(client.get(f"{APPOINTMENTS}/{visit.pk}"), 404)
    OperationOutcome.model_validate(outcome)
    assert fhir_json(client.get(APPOINTMENTS, {"patient": f"Patient/{user.pk}"}))["total"] == 0
    assert str(visit.pk) not in ids(fhir_json(client.get(APPOINTMENTS)))
    assert log_rows(actor) == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"date": "ge2030-01-02"}, ["jan2", "jan3"]),
        ({"date": "2030-01-02"}, ["jan2"]),
        ({"date": ["gt2030-01-01", "lt2030-01-03"]}, ["jan2"]),
        ({"date": "le2030-01-02T09:00:00Z"}, ["jan1", "jan2"]),
        ({"status": "booked"}, ["jan2"]),
        ({"status": "cancelled"}, ["jan3"]),
        ({"status": "pending,booked"}, ["jan1", "jan2"]),
    ],
)
def test_date_and_status_searches(as_user, user, params, expected):
    kind = AppointmentTypeFactory()
    made = {
        "jan1": AppointmentFactory(patient=user, appointment_type=kind, starts_at=datetime(2030, 1, 1, 9, tzinfo=UTC)),
        "jan2": AppointmentFactory(
            patient=user, appointment_type=kind, starts_at=datetime(2030, 1, 2, 9, tzinfo=UTC), status="confirmed"
        ),
        "jan3": AppointmentFactory(
            patient=user, appointment_type=kind, starts_at=datetime(2030, 1, 3, 9, tzinfo=UTC), status="rescheduled"
        ),
    }
    body = fhir_json(as_user.get(APPOINTMENTS, params))
    assert sorted(ids(body)) == sorted(str(made[name].pk) for name in expected)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"date": "2030-13-01"}, "date"),
        ({"date": "le9999-12-31"}, "date"),
        ({"date": "sa2030-01-01"}, "date"),
        ({"date": "2030-01-01T10:00:00"}, "date"),
        ({"status": "done"}, "status"),
        ({"patient": "someone"}, "patient"),
        ({"practitioner": "Patient/x"}, "practitioner"),
        ({"_count": "-1"}, "_count"),
        ({"code": "x"}, "code"),
    ],
)
def test_a_bad_appointment_search_parameter_is_a_400_outcome_naming_it(as_user, params, name):
    outcome = fhir_json(as_user.get(APPOINTMENTS, params), 400)
    OperationOutcome.model_validate(outcome)
    assert outcome["issue"][0]["expression"] == [name]


def test_the_appointment_search_makes_as_many_queries_for_20_as_for_2(as_user, user):
    def queries(count: int) -> int:
        for day in range(count):
            AppointmentFactory(patient=user, starts_at=a_slot(days=day % 20 + 1, hour=8 + day // 20))
        with CaptureQueriesContext(connection) as captured:
            body = fhir_json(as_user.get(APPOINTMENTS))
        assert body["total"] >= count
        return len(captured)

    assert queries(2) == queries(20)


# --- Schedule and Slot ---------------------------------------------------------------------------------


@pytest.fixture
def provider(db):
    provider = ProviderFactory(hours=[(day, time(9), time(12)) for day in range(5)], minimum_notice_minutes=0)
    AppointmentTypeFactory(provider=provider, name="Consultation", duration_minutes=30)
    AppointmentTypeFactory(provider=provider, name="Video", duration_minutes=60, telemedicine=True)
    return provider


def _next_monday() -> date:
    today = timezone.now().astimezone(UTC).date()
    return today + timedelta(days=7 - today.weekday())


def test_a_providers_schedule_is_a_valid_schedule(as_user, provider):
    body = fhir_json(as_user.get(f"{BASE}/Schedule", {"actor": f"Practitioner/{provider.pk}"}))
    Bundle.model_validate(body)
    assert ids(body) == [str(provider.pk)]
    schedule = body["entry"][0]["resource"]
    Schedule.model_validate(schedule)
    assert schedule["actor"][0]["reference"] == f"Practitioner/{provider.pk}"
    assert {c["text"] for c in schedule["serviceType"]} == {"Consultation", "Video"}
    assert schedule["planningHorizon"]["end"] > schedule["planningHorizon"]["start"]
    assert fhir_json(as_user.get(f"{BASE}/Schedule", {"actor": "nobody"}), 400)["issue"][0]["expression"] == ["actor"]


def test_an_appointments_practitioner_reference_resolves_to_a_valid_practitioner(as_user, provider):
    provider.languages = ["en", "es"]
    provider.save(update_fields=["languages"])
    schedule = fhir_json(as_user.get(f"{BASE}/Schedule", {"actor": f"Practitioner/{provider.pk}"}))["entry"][0]
    reference = schedule["resource"]["actor"][0]["reference"]

    practitioner = fhir_json(as_user.get(f"{BASE}/{reference}"))

    Practitioner.model_validate(practitioner)
    assert practitioner["id"] == str(provider.pk)
    assert practitioner["name"][0]["family"] == provider.user.last_name
    assert [c["coding"][0]["code"] for c in practitioner["communication"]] == ["en", "es"]
    assert fhir_json(as_user.get(f"{BASE}/Practitioner/{provider.pk}0"), 404)["resourceType"] == "OperationOutcome"
    patient = UserFactory()
    assert fhir_json(as_user.get(f"{BASE}/Practitioner/{patient.pk}"), 404)["resourceType"] == "OperationOutcome"


def test_free_slots_are_valid_slots_of_the_schedule_without_the_booked_time(as_user, provider):
    monday = _next_monday()
    consultation = provider.appointment_types.get(name="Consultation")
    AppointmentFactory(
        appointment_type=consultation, starts_at=datetime.combine(monday, time(10), tzinfo=UTC), status="confirmed"
    )
    DateOverride.objects.create(provider=provider, date=monday + timedelta(days=1), kind=OverrideKind.UNAVAILABLE)
    params = {
        "schedule": f"Schedule/{provider.pk}",
        "start": [f"ge{monday.isoformat()}", f"le{(monday + timedelta(days=1)).isoformat()}"],
        "service-type": str(consultation.pk),
    }
    body = fhir_json(as_user.get(f"{BASE}/Slot", params))
    Bundle.model_validate(body)
    for entry in body["entry"]:
        Slot.model_validate(entry["resource"])
    starts = [entry["resource"]["start"] for entry in body["entry"]]
    # Monday 09:00-12:00 every 15 minutes, 30-minute visits, less what overlaps 10:00-10:30; Tuesday is closed.
    expected = [
        f"{monday.isoformat()}T{t}:00+00:00"
        for t in ("09:00", "09:15", "09:30", "10:30", "10:45", "11:00", "11:15", "11:30")
    ]
    assert starts == expected
    slot = body["entry"][0]["resource"]
    assert slot["status"] == "free"
    assert slot["schedule"] == {"reference": f"Schedule/{provider.pk}"}
    assert slot["end"] == f"{monday.isoformat()}T09:30:00+00:00"
    assert body["total"] == len(expected)


def test_slots_of_every_active_type_without_service_type(as_user, provider):
    monday = _next_monday()
    body = fhir_json(as_user.get(f"{BASE}/Slot", {"schedule": str(provider.pk), "start": monday.isoformat()}))
    names = {entry["resource"]["serviceType"][0]["text"] for entry in body["entry"]}
    assert names == {"Consultation", "Video"}


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({}, "schedule"),
        ({"schedule": "Practitioner/x"}, "schedule"),
        ({"start": "ge0001-01-01"}, "start"),
        ({"start": "2030-02-30"}, "start"),
        ({"start": ["ge2030-01-01", "le2030-03-01"]}, "start"),
        ({"service-type": "Consultation"}, "service-type"),
        ({"actor": "x"}, "actor"),
    ],
)
def test_a_bad_slot_search_parameter_is_a_400_outcome_naming_it(as_user, provider, params, name):
    params = {"schedule": str(provider.pk), **params} if name not in ("schedule",) else params
    outcome = fhir_json(as_user.get(f"{BASE}/Slot", params), 400)
    OperationOutcome.model_validate(outcome)
    assert outcome["issue"][0]["expression"] == [name]


def test_the_slot_search_makes_as_many_queries_with_many_bookings_as_with_none(as_user, provider):
    monday = _next_monday()
    consultation = provider.appointment_types.get(name="Consultation")
    params = {"schedule": str(provider.pk), "start": [f"ge{monday}", f"le{monday + timedelta(days=13)}"]}

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            fhir_json(as_user.get(f"{BASE}/Slot", params))
        return len(captured)

    empty = queries()
    for day in range(10):
        AppointmentFactory(
            appointment_type=consultation,
            starts_at=datetime.combine(monday + timedelta(days=day), time(9), tzinfo=UTC),
            status="confirmed",
        )
    assert queries() == empty


# --- Export, metadata, schema --------------------------------------------------------------------------------


def test_the_fhir_export_of_all_data_carries_the_appointments_the_requester_may_see(user, visit):
    ReadingFactory(user=user, metric_type_id=2)
    day = visit.starts_at.date()
    appointments = export_appointments(patient=user, requested_by=user, start=day, end=day)
    bundle = json.loads(fhir_document(patient=user, readings=user.readings.all(), appointments=appointments))
    Bundle.model_validate(bundle)
    resources = {entry["resource"]["resourceType"]: entry["resource"] for entry in bundle["entry"]}
    assert set(resources) == {"Patient", "Observation", "Appointment"}
    FhirAppointment.model_validate(resources["Appointment"])
    assert resources["Appointment"]["participant"][0]["actor"]["reference"] == f"urn:uuid:{user.pk}"
    # A clinician whose grant covers metrics only exports no appointment.
    metrics_only = ClinicianFactory()
    CareTeamGrantFactory(patient=user, clinician=metrics_only, scopes=["metrics"])
    assert not export_appointments(patient=user, requested_by=metrics_only, start=day, end=day).exists()


def test_the_export_endpoint_adds_appointments_only_to_an_all_types_fhir_export(as_user, user, visit):
    day = visit.starts_at.date().isoformat()
    query = {"format": "fhir", "start_date": day, "end_date": day}
    everything = as_user.get("/api/v1/health-metrics/export/", query)
    assert everything.status_code == 200, everything.content
    kinds = [entry["resource"]["resourceType"] for entry in json.loads(everything.content)["entry"]]
    assert kinds == ["Patient", "Appointment"]
    one_type = as_user.get("/api/v1/health-metrics/export/", {**query, "metric_type": "heart_rate"})
    kinds = [entry["resource"]["resourceType"] for entry in json.loads(one_type.content)["entry"]]
    assert kinds == ["Patient"]


def test_the_capability_statement_lists_appointment_schedule_and_slot(api_client):
    statement = CapabilityStatement.model_validate(api_client.get(f"{BASE}/metadata").json())
    resources = {r.type: {i.code for i in r.interaction} for r in statement.rest[0].resource}
    assert resources["Appointment"] == {"read", "search-type"}
    assert resources["Schedule"] == {"search-type"}
    assert resources["Slot"] == {"search-type"}
    assert resources["Practitioner"] == {"read"}
