"""FHIR R4 MedicationRequest and MedicationStatement (read, search) for medication plans, and plans in the FHIR
export: shapes validated with fhir.resources' R4B models (see records/fhir.py), access, the access log, paging,
errors, query counts.
"""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from rest_framework.test import APIClient

from accounts.models import AccessLog
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory, UserFactory
from conftest import bearer
from medications.models import PlanStatus, Route
from medications.tests.factories import DoseFactory, MedicationFactory, MedicationPlanFactory
from records import fhir
from records.exports import export_plans, fhir_document

pytestmark = pytest.mark.django_db

BASE = "/fhir/r4"
REQUESTS = f"{BASE}/MedicationRequest"
STATEMENTS = f"{BASE}/MedicationStatement"
MODELS = {"MedicationRequest": MedicationRequest, "MedicationStatement": MedicationStatement}


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


def loaded(plan):
    """The plan as the views and the export load it (with `last_taken`)."""
    return fhir.plans_for_fhir(type(plan).objects.filter(pk=plan.pk)).get()


def both(plan) -> tuple[dict, dict]:
    plan = loaded(plan)
    request = fhir.medication_request(plan)
    statement = fhir.medication_statement(plan, last_taken=plan.last_taken)
    MedicationRequest.model_validate(request)
    MedicationStatement.model_validate(statement)
    return request, statement


@pytest.fixture
def plan(user):
    return MedicationPlanFactory(
        patient=user,
        name="Lisinopril 10 MG Oral Tablet",
        medication=MedicationFactory(name="Lisinopril 10 MG Oral Tablet", rxcui="314076"),
        times=["08:00", "20:00"],
        start_date=date(2030, 1, 1),
        end_date=date(2030, 3, 31),
        instructions="With water",
    )


# --- The resources ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (PlanStatus.ACTIVE, "active"),
        (PlanStatus.PAUSED, "on-hold"),
        (PlanStatus.COMPLETED, "completed"),
        (PlanStatus.DISCONTINUED, "stopped"),
    ],
)
def test_every_plan_status_maps_in_both_resources_and_they_validate(plan, status, code):
    plan.status = status
    plan.save(update_fields=["status"])
    request, statement = both(plan)
    assert request["status"] == code
    assert statement["status"] == code


def test_a_catalog_plan_is_coded_in_rxnorm_with_its_dose_schedule_route_and_dates(plan, user):
    request, statement = both(plan)
    concept = {
        "coding": [{"system": fhir.RXNORM, "code": "314076", "display": "Lisinopril 10 MG Oral Tablet"}],
        "text": "Lisinopril 10 MG Oral Tablet",
    }
    assert request["id"] == statement["id"] == str(plan.pk)
    assert request["medicationCodeableConcept"] == statement["medicationCodeableConcept"] == concept
    assert request["subject"] == statement["subject"] == {"reference": f"Patient/{user.pk}"}
    assert request["intent"] == "plan"
    assert "requester" not in request
    assert request["authoredOn"] == plan.created_at.isoformat()
    assert request["dispenseRequest"] == {"validityPeriod": {"start": "2030-01-01", "end": "2030-03-31"}}
    assert request["dosageInstruction"] == [
        {
            "text": "1 tablet, oral, at 08:00 and 20:00",
            "patientInstruction": "With water",
            "timing": {
                "repeat": {"frequency": 2, "period": 1, "periodUnit": "d", "timeOfDay": ["08:00:00", "20:00:00"]}
            },
            "asNeededBoolean": False,
            "route": {
                "coding": [{"system": fhir.SNOMED, "code": "26643006", "display": "Oral route"}],
                "text": "Oral",
            },
            "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}],
        }
    ]
    assert statement["dosage"] == request["dosageInstruction"]
    assert statement["basedOn"] == [{"reference": f"MedicationRequest/{plan.pk}"}]
    assert statement["effectivePeriod"] == {"start": "2030-01-01", "end": "2030-03-31"}
    assert statement["dateAsserted"] == plan.updated_at.isoformat()
    assert "extension" not in statement  # no dose taken yet


def test_a_free_text_plan_has_text_only(user):
    plan = MedicationPlanFactory(patient=user, name="Grandma's herbal tea")
    request, statement = both(plan)
    assert request["medicationCodeableConcept"] == {"text": "Grandma's herbal tea"}
    assert statement["medicationCodeableConcept"] == {"text": "Grandma's herbal tea"}


def test_a_catalog_product_without_an_rxnorm_code_has_text_only(user):
    plan = MedicationPlanFactory(patient=user, name="Compounded cream", medication=MedicationFactory(rxcui=None))
    request, _ = both(plan)
    assert request["medicationCodeableConcept"] == {"text": "Compounded cream"}


def test_an_as_needed_plan_has_as_needed_and_its_daily_maximum_as_an_amount(user):
    plan = MedicationPlanFactory(
        patient=user,
        name="Ibuprofen",
        dose=Decimal("2"),
        dose_unit="tablet",
        times=[],
        as_needed=True,
        max_doses_per_day=3,
    )
    request, statement = both(plan)
    dosage = request["dosageInstruction"][0]
    assert dosage["asNeededBoolean"] is True
    assert "timing" not in dosage
    assert dosage["maxDosePerPeriod"] == {
        "numerator": {"value": 6, "unit": "tablet"},
        "denominator": {"value": 1, "unit": "day", "system": "http://unitsofmeasure.org", "code": "d"},
    }
    assert dosage["text"] == "2 tablet, oral, as needed, at most 3 doses a day"
    assert statement["dosage"] == [dosage]


def test_weekdays_every_n_hours_and_an_rrule_become_timings(user):
    weekdays = MedicationPlanFactory(patient=user, times=["09:30"], days_of_week=[3, 0])
    every_8h = MedicationPlanFactory(patient=user, times=["06:00"], interval_hours=8, timing="elapsed")
    rrule = MedicationPlanFactory(patient=user, times=["08:00"], rrule="FREQ=MONTHLY;BYMONTHDAY=1")

    assert both(weekdays)[0]["dosageInstruction"][0]["timing"] == {
        "repeat": {
            "frequency": 1,
            "period": 1,
            "periodUnit": "d",
            "dayOfWeek": ["mon", "thu"],
            "timeOfDay": ["09:30:00"],
        }
    }
    assert both(weekdays)[0]["dosageInstruction"][0]["text"] == "1 tablet, oral, at 09:30 on Mon, Thu"
    assert both(every_8h)[0]["dosageInstruction"][0]["timing"] == {
        "repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}
    }
    assert both(rrule)[0]["dosageInstruction"][0]["timing"] == {
        "extension": [{"url": fhir.RRULE_EXTENSION, "valueString": "FREQ=MONTHLY;BYMONTHDAY=1"}],
        "code": {"text": "FREQ=MONTHLY;BYMONTHDAY=1"},
    }


def test_a_fractional_dose_in_a_ucum_unit_and_a_route_without_a_code(user):
    plan = MedicationPlanFactory(patient=user, dose=Decimal("2.5"), dose_unit="mL", route=Route.OTHER)
    dosage = both(plan)[0]["dosageInstruction"][0]
    assert dosage["doseAndRate"] == [
        {"doseQuantity": {"value": 2.5, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}}
    ]
    assert dosage["route"] == {"text": "Other"}


def test_a_clinician_prescriber_is_the_practitioner_and_a_named_one_a_display(user, clinician):
    by_clinician = MedicationPlanFactory(patient=user, prescriber=clinician)
    by_name = MedicationPlanFactory(patient=user, prescriber_name="Dr. Okafor")
    request = both(by_clinician)[0]
    assert request["intent"] == "order"
    assert request["requester"] == {"reference": f"Practitioner/{clinician.pk}", "display": clinician.get_full_name()}
    request = both(by_name)[0]
    assert request["intent"] == "order"
    assert request["requester"] == {"display": "Dr. Okafor"}


def test_the_statement_carries_the_last_dose_taken_and_a_stopped_plan_ends_when_it_stopped(user, plan):
    taken = datetime(2030, 1, 5, 8, 3, tzinfo=UTC)
    DoseFactory(
        plan=plan, scheduled_at=datetime(2030, 1, 4, 8, tzinfo=UTC), status="taken", taken_at=taken - timedelta(days=1)
    )
    DoseFactory(plan=plan, scheduled_at=datetime(2030, 1, 5, 8, tzinfo=UTC), status="taken", taken_at=taken)
    DoseFactory(plan=plan, scheduled_at=datetime(2030, 1, 6, 8, tzinfo=UTC), status="missed")
    stopped = datetime(2030, 1, 20, 12, tzinfo=UTC)
    plan.status, plan.status_changed_at, plan.end_date = PlanStatus.DISCONTINUED, stopped, None
    plan.save()
    _, statement = both(plan)
    assert statement["extension"] == [{"url": fhir.LAST_TAKEN_EXTENSION, "valueDateTime": taken.isoformat()}]
    assert statement["effectivePeriod"] == {"start": "2030-01-01", "end": stopped.isoformat()}


# --- Search and read: who sees what -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [REQUESTS, STATEMENTS])
def test_the_patient_searches_and_reads_their_own_plans_unlogged(as_user, user, plan, url):
    MedicationPlanFactory()  # someone else's
    body = fhir_json(as_user.get(url))
    Bundle.model_validate(body)
    assert ids(body) == [str(plan.pk)]
    assert body["entry"][0]["fullUrl"] == f"http://testserver{url}/{plan.pk}"
    resource = fhir_json(as_user.get(f"{url}/{plan.pk}"))
    MODELS[url.rsplit("/", 1)[1]].model_validate(resource)
    assert resource == body["entry"][0]["resource"]
    assert log_rows(user) == []


def test_a_clinician_with_the_medications_scope_reads_both_and_is_logged(user, clinician, plan):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["medications"])
    client = bearer(APIClient(), clinician)
    assert ids(fhir_json(client.get(REQUESTS, {"patient": f"Patient/{user.pk}"}))) == [str(plan.pk)]
    request = fhir_json(client.get(f"{REQUESTS}/{plan.pk}"))
    statement = fhir_json(client.get(f"{STATEMENTS}/{plan.pk}"))
    assert request["resourceType"] == "MedicationRequest"
    assert statement["basedOn"] == [{"reference": f"MedicationRequest/{plan.pk}"}]
    assert log_rows(clinician) == [
        (user.pk, "medicationplan", "list", ""),
        (user.pk, "medicationplan", "read", str(plan.pk)),
        (user.pk, "medicationplan", "read", str(plan.pk)),
    ]


def test_staff_read_any_plan_and_are_logged(user, staff, plan):
    client = bearer(APIClient(), staff)
    fhir_json(client.get(f"{STATEMENTS}/{plan.pk}"))
    assert log_rows(staff) == [(user.pk, "medicationplan", "read", str(plan.pk))]


@pytest.mark.parametrize(
    "actor_kind", ["patient", "clinician_without_consent", "clinician_without_medications", "revoked"]
)
@pytest.mark.parametrize("url", [REQUESTS, STATEMENTS])
def test_an_outsider_finds_no_plan_of_another_patient(user, plan, actor_kind, url):
    if actor_kind == "patient":
        actor = UserFactory()
    else:
        actor = ClinicianFactory()
        if actor_kind == "clinician_without_medications":
            CareTeamGrantFactory(patient=user, clinician=actor, scopes=["metrics", "appointments"])
        elif actor_kind == "revoked":
            CareTeamGrantFactory(patient=user, clinician=actor, scopes=["medications"], revoked_at=timezone.now())
    client = bearer(APIClient(), actor)
    outcome = fhir_json(client.get(f"{url}/{plan.pk}"), 404)
    OperationOutcome.model_validate(outcome)
    assert outcome["issue"][0]["code"] == "not-found"
    assert fhir_json(client.get(url, {"patient": str(user.pk)}))["total"] == 0
    assert fhir_json(client.get(url))["total"] == 0
    assert log_rows(actor) == []


@pytest.mark.parametrize("url", [REQUESTS, STATEMENTS])
def test_a_malformed_id_is_a_404_outcome(as_user, url):
    assert fhir_json(as_user.get(f"{url}/not-a-uuid"), 404)["issue"][0]["diagnostics"].endswith("is not known.")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "active"}, ["active"]),
        ({"status": "on-hold,stopped"}, ["paused", "discontinued"]),
        ({"status": "completed"}, ["completed"]),
        ({"status": "unknown"}, []),  # a code of both resources that no plan of ours has
        ({"patient": "PATIENT"}, ["active", "paused", "completed", "discontinued"]),
        ({"patient": "OTHER"}, []),
    ],
)
@pytest.mark.parametrize("url", [REQUESTS, STATEMENTS])
def test_search_by_status_and_patient(as_user, user, url, params, expected):
    made = {status: MedicationPlanFactory(patient=user, status=status) for status in PlanStatus.values}
    params = {
        name: value.replace("PATIENT", f"Patient/{user.pk}").replace("OTHER", str(UserFactory().pk))
        for name, value in params.items()
    }
    body = fhir_json(as_user.get(url, params))
    assert sorted(ids(body)) == sorted(str(made[status].pk) for status in expected)


@pytest.mark.parametrize(
    ("url", "params", "name"),
    [
        (REQUESTS, {"status": "done"}, "status"),
        (REQUESTS, {"status": "not-taken"}, "status"),  # a MedicationStatement code
        (STATEMENTS, {"status": "draft"}, "status"),  # a MedicationRequest code
        (REQUESTS, {"patient": "someone"}, "patient"),
        (STATEMENTS, {"patient": "Practitioner/x"}, "patient"),
        (REQUESTS, {"_count": "-1"}, "_count"),
        (STATEMENTS, {"page": "0"}, "page"),
        (REQUESTS, {"code": "314076"}, "code"),
        (STATEMENTS, {"medication": "x"}, "medication"),
    ],
)
def test_a_bad_search_parameter_is_a_400_outcome_naming_it(as_user, url, params, name):
    outcome = fhir_json(as_user.get(url, params), 400)
    OperationOutcome.model_validate(outcome)
    assert outcome["issue"][0]["expression"] == [name]


def test_paging_newest_first_with_links(as_user, user):
    plans = [MedicationPlanFactory(patient=user) for _ in range(5)]
    newest_first = [str(p.pk) for p in sorted(plans, key=lambda p: (p.created_at, p.pk), reverse=True)]

    first = fhir_json(as_user.get(STATEMENTS, {"_count": 2}))
    second = fhir_json(as_user.get(STATEMENTS, {"_count": 2, "page": 2}))
    last = fhir_json(as_user.get(STATEMENTS, {"_count": 2, "page": 3}))
    beyond = fhir_json(as_user.get(STATEMENTS, {"_count": 2, "page": 4}))

    assert [first["total"], second["total"], last["total"], beyond["total"]] == [5, 5, 5, 5]
    assert ids(first) + ids(second) + ids(last) == newest_first
    assert ids(beyond) == []
    links = {link["relation"]: link["url"] for link in second["link"]}
    assert links == {
        "self": "http://testserver/fhir/r4/MedicationStatement?_count=2&page=2",
        "next": "http://testserver/fhir/r4/MedicationStatement?_count=2&page=3",
        "previous": "http://testserver/fhir/r4/MedicationStatement?_count=2",
    }
    assert {link["relation"] for link in last["link"]} == {"self", "previous"}
    assert ids(fhir_json(as_user.get(REQUESTS, {"_count": 0}))) == []


@pytest.mark.parametrize("url", [REQUESTS, STATEMENTS])
def test_a_search_page_makes_as_many_queries_for_ten_plans_as_for_one(user, clinician, url):
    CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["medications"])
    client = bearer(APIClient(), clinician)

    def queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            body = fhir_json(client.get(url, {"patient": str(user.pk)}))
        return len(captured), body["total"]

    prescriber = ClinicianFactory()
    medication = MedicationFactory(rxcui="314076")
    plan = MedicationPlanFactory(patient=user, medication=medication, prescriber=prescriber)
    DoseFactory(plan=plan, status="taken", taken_at=timezone.now())
    one, total = queries()
    assert total == 1
    for _ in range(9):
        plan = MedicationPlanFactory(
            patient=user, medication=MedicationFactory(rxcui=None), prescriber=ClinicianFactory()
        )
        DoseFactory(plan=plan, status="taken", taken_at=timezone.now())
    many, total = queries()
    assert total == 10
    assert many == one


# --- Export and metadata ---------------------------------------------------------------------------------------


def test_the_fhir_export_carries_both_resources_per_plan_in_a_valid_bundle(user, plan):
    before = MedicationPlanFactory(patient=user, start_date=date(2029, 1, 1), end_date=date(2029, 12, 31))
    DoseFactory(
        plan=plan,
        scheduled_at=datetime(2030, 1, 2, 8, tzinfo=UTC),
        status="taken",
        taken_at=datetime(2030, 1, 2, 8, 5, tzinfo=UTC),
    )
    plans = export_plans(patient=user, requested_by=user, start=date(2030, 1, 1), end=date(2030, 1, 31))
    bundle = json.loads(fhir_document(patient=user, readings=user.readings.all(), plans=plans))

    Bundle.model_validate(bundle)
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert kinds == ["Patient", "MedicationRequest", "MedicationStatement"]
    patient_entry, request_entry, statement_entry = bundle["entry"]
    request, statement = request_entry["resource"], statement_entry["resource"]
    MedicationRequest.model_validate(request)
    MedicationStatement.model_validate(statement)
    assert request["id"] == statement["id"] == str(plan.pk)
    assert str(before.pk) not in json.dumps(bundle)  # ended before the period
    assert len({entry["fullUrl"] for entry in bundle["entry"]}) == 3
    assert request_entry["fullUrl"] == f"urn:uuid:{plan.pk}"
    assert request["subject"] == statement["subject"] == {"reference": patient_entry["fullUrl"]}
    assert statement["basedOn"] == [{"reference": request_entry["fullUrl"]}]
    assert statement["extension"][0]["valueDateTime"] == "2030-01-02T08:05:00+00:00"
    assert request["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 1  # a number, not "1.000"


def test_the_export_has_plans_only_for_whom_may_see_them(user, plan):
    window = {"patient": user, "start": date(2030, 1, 1), "end": date(2030, 1, 31)}
    granted, appointments_only = ClinicianFactory(), ClinicianFactory()
    CareTeamGrantFactory(patient=user, clinician=granted, scopes=["metrics", "medications"])
    CareTeamGrantFactory(patient=user, clinician=appointments_only, scopes=["metrics", "appointments"])
    assert list(export_plans(requested_by=granted, **window)) == [plan]
    assert list(export_plans(requested_by=appointments_only, **window)) == []
    assert list(export_plans(requested_by=UserFactory(), **window)) == []


def test_the_export_endpoint_adds_plans_only_to_an_all_types_fhir_export(as_user, plan):
    query = {"format": "fhir", "start_date": "2030-02-01", "end_date": "2030-02-28"}
    everything = as_user.get("/api/v1/health-metrics/export/", query)
    assert everything.status_code == 200, everything.content
    bundle = json.loads(everything.content)
    Bundle.model_validate(bundle)
    assert [entry["resource"]["resourceType"] for entry in bundle["entry"]] == [
        "Patient",
        "MedicationRequest",
        "MedicationStatement",
    ]
    one_type = as_user.get("/api/v1/health-metrics/export/", {**query, "metric_type": "heart_rate"})
    assert [entry["resource"]["resourceType"] for entry in json.loads(one_type.content)["entry"]] == ["Patient"]


def test_the_capability_statement_lists_both_resources(api_client):
    statement = CapabilityStatement.model_validate(api_client.get(f"{BASE}/metadata").json())
    resources = {r.type: r for r in statement.rest[0].resource}
    for name in ("MedicationRequest", "MedicationStatement"):
        assert {i.code for i in resources[name].interaction} == {"read", "search-type"}
        assert {p.name for p in resources[name].searchParam} == {"patient", "status", "_count"}
