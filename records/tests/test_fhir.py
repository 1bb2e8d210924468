"""The FHIR R4 read API and resources: shapes that validate, searches, paging, access, errors, query counts.

Every resource is validated with fhir.resources' R4B models (the closest to R4 it ships; see health_metrics/fhir.py).
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError
from rest_framework.test import APIClient

from accounts.models import AccessLog
from accounts.tests.factories import CareTeamGrantFactory, ClinicianFactory, UserFactory
from conftest import bearer
from health_metrics.models import MetricType, Reading
from health_metrics.tests.factories import ReadingFactory
from records import fhir

pytestmark = pytest.mark.django_db

BASE = "/fhir/r4"
SEARCH = f"{BASE}/Observation"
HEART_RATE, BLOOD_PRESSURE, BODY_WEIGHT, MUSCLE_MASS, SLEEP = 2, 1, 16, 21, 34


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def reading(user, *, type_id: int = HEART_RATE, value: float = 72.0, when: str = "2024-03-02T10:00:00+00:00", **extra):
    """A reading at `when` (with its offset kept as the reading's own), local day from that offset."""
    moment = at(when)
    offset = int(moment.utcoffset().total_seconds() // 60)
    return ReadingFactory(
        user=user,
        metric_type_id=type_id,
        value=value,
        recorded_at=moment,
        utc_offset_minutes=offset,
        local_date=moment.date(),
        **extra,
    )


def fhir_json(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/fhir+json"
    return response.json()


def ids(bundle: dict) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


@pytest.fixture
def consent(user, clinician):
    return CareTeamGrantFactory(patient=user, clinician=clinician, scopes=["metrics"])


@pytest.fixture
def as_clinician(clinician):
    return bearer(APIClient(), clinician)


# --- Resources that validate ---------------------------------------------------------------------------


def test_the_validator_rejects_a_malformed_resource():
    """So the validations below can fail: an unknown element or a wrong type is an error."""
    with pytest.raises(ValidationError):
        Observation.model_validate({"resourceType": "Observation", "status": "final", "code": {}, "valueX": 1})
    with pytest.raises(ValidationError):
        Patient.model_validate({"resourceType": "Patient", "birthDate": "17 May 1980"})


def test_a_single_value_reading_is_a_valid_vital_signs_observation(as_user, user):
    hr = reading(user, value=64.0, when="2024-03-02T08:15:00+02:00", is_abnormal=True, notes="after a run")
    body = fhir_json(as_user.get(f"{SEARCH}/{hr.pk}"))
    Observation.model_validate(body)
    assert body["id"] == str(hr.pk)
    assert body["status"] == "final"
    assert body["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
        "code": "vital-signs",
        "display": "Vital Signs",
    }
    assert body["code"]["coding"][0] == {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}
    assert body["code"]["coding"][1]["system"] == fhir.METRIC_TYPE_SYSTEM
    assert body["valueQuantity"] == {
        "value": 64,
        "unit": "bpm",  # Quantity.unit is the human text; code is UCUM
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    }
    assert body["effectiveDateTime"] == "2024-03-02T08:15:00+02:00"  # the reading's own offset
    assert body["subject"] == {"reference": f"Patient/{user.pk}"}
    assert body["interpretation"][0]["coding"][0]["code"] == "A"
    assert body["note"] == [{"text": "after a run"}]


def test_blood_pressure_is_the_panel_with_systolic_and_diastolic_components(as_user, user):
    bp = reading(user, type_id=BLOOD_PRESSURE, value=132.0, secondary_value=84.0, original_unit="mm[Hg]")
    body = fhir_json(as_user.get(f"{SEARCH}/{bp.pk}"))
    Observation.model_validate(body)
    assert body["code"]["coding"][0]["code"] == "85354-9"
    assert "valueQuantity" not in body
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in body["component"]}
    assert components == {
        "8480-6": {"value": 132, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
        "8462-4": {"value": 84, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
    }


def test_an_interval_reading_has_an_effective_period(as_user, user):
    sleep = reading(
        user, type_id=SLEEP, value=7.5, when="2024-03-01T23:00:00+01:00", ended_at=at("2024-03-02T06:30:00+01:00")
    )
    body = fhir_json(as_user.get(f"{SEARCH}/{sleep.pk}"))
    Observation.model_validate(body)
    assert body["effectivePeriod"] == {"start": "2024-03-01T23:00:00+01:00", "end": "2024-03-02T06:30:00+01:00"}
    assert "effectiveDateTime" not in body
    assert body["category"][0]["coding"][0]["code"] == "activity"
    assert body["valueQuantity"]["code"] == "h"


def test_a_type_without_loinc_has_only_the_local_code(as_user, user):
    muscle = reading(user, type_id=MUSCLE_MASS, value=31.2, original_unit="kg")
    body = fhir_json(as_user.get(f"{SEARCH}/{muscle.pk}"))
    Observation.model_validate(body)
    assert body["code"]["coding"] == [
        {
            "system": "https://openvitals.org/fhir/CodeSystem/metric-type",
            "code": "muscle_mass",
            "display": "Muscle mass",
        }
    ]
    assert body["category"][0]["coding"][0]["code"] == "exam"


def test_every_catalog_type_has_a_category_and_makes_a_valid_observation(user):
    types = list(MetricType.objects.all())
    assert set(fhir.CATEGORY_BY_TYPE) == {t.code for t in types}
    now = timezone.now()
    for metric_type in types:
        row = Reading(
            user=user,
            metric_type=metric_type,
            value=120.0,
            secondary_value=80.0 if metric_type.is_pair else None,
            recorded_at=now,
            ended_at=now + timedelta(hours=1) if metric_type.is_interval else None,
            utc_offset_minutes=-300,
            created_at=now,
            updated_at=now,
        )
        resource = fhir.observation_resource(row)
        Observation.model_validate(resource)
        assert resource["code"]["coding"][-1]["code"] == metric_type.code
        if metric_type.loinc:
            assert resource["code"]["coding"][0] == {
                "system": "http://loinc.org",
                "code": metric_type.loinc,
                "display": metric_type.display_name,
            }
        if not metric_type.is_pair:
            assert resource["valueQuantity"]["code"] == metric_type.unit


def test_a_patient_carries_name_gender_and_birth_date(as_user, user):
    user.profile.sex = "female"
    user.profile.date_of_birth = date(1980, 5, 17)
    user.profile.save()
    body = fhir_json(as_user.get(f"{BASE}/Patient/{user.pk}"))
    Patient.model_validate(body)
    assert body["id"] == str(user.pk)
    assert body["gender"] == "female"
    assert body["birthDate"] == "1980-05-17"
    assert body["name"] == [
        {"use": "official", "text": user.get_full_name(), "family": user.last_name, "given": [user.first_name]}
    ]


def test_a_patient_without_profile_details_has_neither_gender_nor_birth_date():
    person = UserFactory(first_name="", last_name="")
    resource = fhir.patient_resource(person)
    Patient.model_validate(resource)
    assert resource == {"resourceType": "Patient", "id": str(person.pk), "active": True}


def test_the_search_answers_a_valid_searchset_bundle(as_user, user):
    rows = [reading(user, when=f"2024-03-0{day}T10:00:00+00:00") for day in (1, 2, 3)]
    rows.append(reading(user, type_id=BLOOD_PRESSURE, value=120, secondary_value=80, when="2024-03-04T10:00:00Z"))
    body = fhir_json(as_user.get(SEARCH))
    Bundle.model_validate(body)
    assert body["type"] == "searchset"
    assert body["total"] == 4
    assert ids(body) == [str(r.pk) for r in reversed(rows)]  # newest first
    first = body["entry"][0]
    assert first["fullUrl"] == f"http://testserver/fhir/r4/Observation/{rows[-1].pk}"
    assert first["search"] == {"mode": "match"}


def test_the_export_bundle_is_a_valid_collection_of_the_patient_and_observations(user):
    rows = [
        reading(user),
        reading(user, type_id=BLOOD_PRESSURE, value=120, secondary_value=80),
        reading(user, type_id=SLEEP, value=8, ended_at=at("2024-03-02T18:00:00+00:00")),
        reading(user, type_id=MUSCLE_MASS, value=30),
    ]
    readings = Reading.objects.filter(user=user).select_related("metric_type").order_by("recorded_at", "id")
    bundle = fhir.bundle_for_export(patient=user, readings=readings)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    resources = [entry["resource"] for entry in bundle["entry"]]
    assert resources[0]["resourceType"] == "Patient"
    assert {r["id"] for r in resources[1:]} == {str(r.pk) for r in rows}
    patient_url = bundle["entry"][0]["fullUrl"]
    assert patient_url == f"urn:uuid:{user.pk}"
    # Every Observation points at the Patient entry of the same file.
    assert {r["subject"]["reference"] for r in resources[1:]} == {patient_url}
    assert all(entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}" for entry in bundle["entry"])


# --- Searches -------------------------------------------------------------------------------------------


@pytest.fixture
def mixed(user):
    return {
        "hr": [reading(user, when="2024-03-01T10:00:00Z"), reading(user, when="2024-03-02T10:00:00Z")],
        "weight": [reading(user, type_id=BODY_WEIGHT, value=80, original_unit="kg")],
        "muscle": [reading(user, type_id=MUSCLE_MASS, value=30, original_unit="kg")],
    }


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("8867-4", ["hr"]),
        ("http://loinc.org|8867-4", ["hr"]),
        ("http://loinc.org|29463-7,8867-4", ["hr", "weight"]),
        ("muscle_mass", ["muscle"]),
        ("https://openvitals.org/fhir/CodeSystem/metric-type|muscle_mass", ["muscle"]),
        ("http://loinc.org|muscle_mass", []),
        ("http://snomed.info/sct|8867-4", []),
        ("85354-9", []),
    ],
)
def test_a_code_search_returns_exactly_the_readings_of_those_types(as_user, mixed, code, expected):
    body = fhir_json(as_user.get(SEARCH, {"code": code}))
    wanted = {str(r.pk) for name in expected for r in mixed[name]}
    assert set(ids(body)) == wanted
    assert body["total"] == len(wanted)


@pytest.fixture
def timeline(user):
    return {
        "mar1": reading(user, when="2024-03-01T10:00:00+00:00"),
        "mar2": reading(user, when="2024-03-02T10:00:00+00:00"),
        # 23:30 UTC on the 3rd is the 4th at 01:30 on the reading's own clock.
        "mar4_local": reading(user, when="2024-03-04T01:30:00+02:00"),
        "sleep": reading(
            user, type_id=SLEEP, value=8, when="2024-02-29T23:00:00+00:00", ended_at=at("2024-03-01T07:00:00+00:00")
        ),
    }


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (["ge2024-03-02", "le2024-03-03"], ["mar2"]),
        (["2024-03-04"], ["mar4_local"]),
        (["eq2024-03-03"], []),
        (["lt2024-03-02"], ["mar1", "sleep"]),
        (["gt2024-03-01"], ["mar2", "mar4_local"]),
        (["2024-03"], ["mar1", "mar2", "mar4_local"]),
        (["2024"], ["mar1", "mar2", "mar4_local", "sleep"]),
        (["ge2024-03-02T10:00:00Z"], ["mar2", "mar4_local"]),
        (["gt2024-03-02T10:00:00Z"], ["mar4_local"]),
        (["le2024-03-02T10:00:00+00:00"], ["mar1", "mar2", "sleep"]),
        (["lt2024-03-02T12:00:00+02:00"], ["mar1", "sleep"]),
        (["ge2024-03-03T23:30:00Z", "le2024-03-03T23:30:00Z"], ["mar4_local"]),
        (["2024-03-02T10:00Z"], ["mar2"]),
        # The sleep ran over 06:00 on the 1st: ge sees where it ends, le where it starts.
        (["ge2024-03-01T06:00:00Z", "le2024-02-29T23:00:00Z"], ["sleep"]),
        (["eq2024-03-01T06:00:00Z"], []),
    ],
)
def test_a_date_search_returns_exactly_the_readings_in_range(as_user, timeline, dates, expected):
    body = fhir_json(as_user.get(SEARCH, {"date": dates}))
    assert sorted(ids(body)) == sorted(str(timeline[name].pk) for name in expected)
    assert body["total"] == len(expected)


def test_an_unencoded_plus_in_a_zone_is_read_as_plus(as_user, timeline):
    body = fhir_json(as_user.get(f"{SEARCH}?date=lt2024-03-02T12:00:00+02:00"))
    assert sorted(ids(body)) == sorted([str(timeline["mar1"].pk), str(timeline["sleep"].pk)])


def test_code_and_date_combine(as_user, user, timeline):
    body = fhir_json(as_user.get(SEARCH, {"code": "http://loinc.org|8867-4", "date": "le2024-03-01"}))
    assert ids(body) == [str(timeline["mar1"].pk)]


def test_pages_link_to_each_other_and_cover_every_reading_once(as_user, user):
    start = datetime(2024, 3, 1, tzinfo=UTC)
    rows = [reading(user, when=(start + timedelta(hours=h)).isoformat()) for h in range(5)]
    first = fhir_json(as_user.get(SEARCH, {"_count": 2, "code": "8867-4"}))
    Bundle.model_validate(first)
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert set(links) == {"self", "next"}
    assert links["self"] == "http://testserver/fhir/r4/Observation?_count=2&code=8867-4"
    assert first["total"] == 5

    second = fhir_json(as_user.get(links["next"]))
    links2 = {link["relation"]: link["url"] for link in second["link"]}
    assert set(links2) == {"self", "next", "previous"}
    assert "page=2" in links2["self"]
    assert "page" not in links2["previous"]

    third = fhir_json(as_user.get(links2["next"]))
    links3 = {link["relation"]: link["url"] for link in third["link"]}
    assert set(links3) == {"self", "previous"}
    assert "page=2" in links3["previous"]
    assert ids(first) + ids(second) + ids(third) == [str(r.pk) for r in reversed(rows)]


def test_count_zero_answers_the_total_only_and_a_page_past_the_end_is_empty(as_user, user):
    ReadingFactory.create_batch(3, user=user)
    body = fhir_json(as_user.get(SEARCH, {"_count": 0}))
    assert body["total"] == 3
    assert "entry" not in body or body["entry"] == []
    past = fhir_json(as_user.get(SEARCH, {"page": 9}))
    assert past["total"] == 3
    assert ids(past) == []
    assert {link["relation"] for link in past["link"]} == {"self", "previous"}


def test_count_above_the_maximum_is_capped(as_user, user):
    ReadingFactory.create_batch(2, user=user)
    body = fhir_json(as_user.get(SEARCH, {"_count": 5000}))
    assert len(ids(body)) == 2


# --- Who sees what ------------------------------------------------------------------------------------


def log_rows(actor):
    return list(
        AccessLog.objects.filter(actor=actor)
        .order_by("id")
        .values_list("patient_id", "resource", "action", "object_id")
    )


def test_a_consented_clinician_searches_reads_and_is_logged(as_clinician, clinician, user, other_user, consent):
    mine = [reading(user), reading(user, when="2024-03-03T10:00:00Z")]
    reading(other_user)
    body = fhir_json(as_clinician.get(SEARCH, {"patient": str(user.pk)}))
    assert sorted(ids(body)) == sorted(str(r.pk) for r in mine)
    assert log_rows(clinician) == [(user.pk, "reading", "list", "")]

    fhir_json(as_clinician.get(f"{SEARCH}/{mine[0].pk}"))
    fhir_json(as_clinician.get(f"{BASE}/Patient/{user.pk}"))
    assert log_rows(clinician)[1:] == [
        (user.pk, "reading", "read", str(mine[0].pk)),
        (user.pk, "user", "read", str(user.pk)),
    ]


def test_a_clinician_search_without_patient_covers_every_consenting_patient(as_clinician, clinician, user, consent):
    second = UserFactory()
    CareTeamGrantFactory(patient=second, clinician=clinician, scopes=["metrics"])
    stranger = UserFactory()
    visible = [reading(user), reading(second), reading(clinician)]
    reading(stranger)
    body = fhir_json(as_clinician.get(SEARCH))
    assert sorted(ids(body)) == sorted(str(r.pk) for r in visible)
    # One list row per other patient on the page; the clinician's own reading is not logged.
    assert sorted(log_rows(clinician)) == sorted([(user.pk, "reading", "list", ""), (second.pk, "reading", "list", "")])


def test_a_patient_reading_their_own_data_writes_no_log_row(as_user, user):
    own = reading(user)
    fhir_json(as_user.get(f"{SEARCH}/{own.pk}"))
    fhir_json(as_user.get(SEARCH))
    fhir_json(as_user.get(f"{BASE}/Patient/{user.pk}"))
    assert log_rows(user) == []


@pytest.mark.parametrize("actor_kind", ["patient", "clinician_without_consent", "clinician_other_scope", "revoked"])
def test_an_outsider_finds_nothing_of_another_patient(user, actor_kind):
    """404 for the Observation and the Patient by id; a search naming the patient matches nothing (empty)."""
    own = reading(user)
    if actor_kind == "patient":
        actor = UserFactory()
    else:
        actor = ClinicianFactory()
        if actor_kind == "clinician_other_scope":
            CareTeamGrantFactory(patient=user, clinician=actor, scopes=["medications", "appointments"])
        elif actor_kind == "revoked":
            CareTeamGrantFactory(patient=user, clinician=actor, revoked_at=timezone.now())
    client = bearer(APIClient(), actor)
    for url in (f"{SEARCH}/{own.pk}", f"{BASE}/Patient/{user.pk}"):
        outcome = fhir_json(client.get(url), 404)
        OperationOutcome.model_validate(outcome)
        assert outcome["issue"][0]["code"] == "not-found"
    named = fhir_json(client.get(SEARCH, {"patient": f"Patient/{user.pk}"}))
    assert named["total"] == 0
    assert ids(named) == []
    assert str(own.pk) not in ids(fhir_json(client.get(SEARCH)))
    assert log_rows(actor) == []


def test_an_unknown_or_malformed_id_is_a_not_found_outcome(as_user):
    for url in (f"{SEARCH}/not-a-uuid", f"{SEARCH}/{Reading().pk}", f"{BASE}/Patient/nope"):
        outcome = fhir_json(as_user.get(url), 404)
        OperationOutcome.model_validate(outcome)


def test_without_credentials_the_answer_is_a_401_outcome(api_client, user):
    own = reading(user)
    for url in (SEARCH, f"{SEARCH}/{own.pk}", f"{BASE}/Patient/{user.pk}"):
        response = api_client.get(url)
        outcome = fhir_json(response, 401)
        OperationOutcome.model_validate(outcome)
        assert outcome["issue"][0]["code"] == "login"
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_write_is_a_405_outcome(as_user, user):
    own = reading(user)
    for url in (SEARCH, f"{SEARCH}/{own.pk}"):
        outcome = fhir_json(as_user.post(url, {"resourceType": "Observation"}), 405)
        OperationOutcome.model_validate(outcome)
        assert outcome["issue"][0]["code"] == "not-supported"
    assert Reading.objects.filter(user=user).count() == 1


def test_fhir_json_is_answered_whatever_the_client_accepts(as_user, user):
    own = reading(user)
    for accept in ("application/json", "application/fhir+json", "*/*", "text/html"):
        body = fhir_json(as_user.get(f"{SEARCH}/{own.pk}", HTTP_ACCEPT=accept))
        assert body["id"] == str(own.pk)


# --- Bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"date": "sa2024-03-01"}, "date"),
        ({"date": "2024-13-01"}, "date"),
        ({"date": "2024-03-01T10:00:00"}, "date"),
        ({"date": "March"}, "date"),
        ({"date": "ge2024-03-01T25:00:00Z"}, "date"),
        ({"_count": "many"}, "_count"),
        ({"_count": "-1"}, "_count"),
        ({"page": "0"}, "page"),
        ({"patient": "someone"}, "patient"),
        ({"code": "http://loinc.org|"}, "code"),
        ({"subject": "Patient/1"}, "subject"),
    ],
)
def test_a_bad_search_parameter_is_a_400_outcome_naming_it(as_user, params, name):
    outcome = fhir_json(as_user.get(SEARCH, params), 400)
    OperationOutcome.model_validate(outcome)
    assert outcome["issue"][0]["code"] == "invalid"
    assert outcome["issue"][0]["expression"] == [name]
    assert outcome["issue"][0]["diagnostics"].startswith(f"{name}: ")


# --- Queries and schema ---------------------------------------------------------------------------------


def test_the_search_makes_as_many_queries_for_30_readings_as_for_3(as_clinician, user, consent):
    def queries(count: int) -> int:
        Reading.objects.filter(user=user).delete()
        start = datetime(2024, 3, 1, tzinfo=UTC)
        for i in range(count):
            type_id = (HEART_RATE, BODY_WEIGHT, MUSCLE_MASS)[i % 3]
            reading(user, type_id=type_id, when=(start + timedelta(minutes=i)).isoformat())
        with CaptureQueriesContext(connection) as captured:
            body = fhir_json(as_clinician.get(SEARCH, {"patient": str(user.pk), "_count": 100}))
        assert len(ids(body)) == count
        return len(captured)

    assert queries(3) == queries(30)


def test_the_fhir_views_are_in_the_openapi_schema():
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert {"/fhir/r4/Observation", "/fhir/r4/Observation/{id}", "/fhir/r4/Patient/{id}"} <= set(paths)
    search = paths["/fhir/r4/Observation"]["get"]
    assert {p["name"] for p in search["parameters"]} == {"patient", "code", "date", "_count", "page"}
    assert "application/fhir+json" in search["responses"]["200"]["content"]


def test_the_capability_statement_is_public_and_valid(api_client):
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    response = api_client.get("/fhir/r4/metadata")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1"
    resources = {r.type: {i.code for i in r.interaction} for r in statement.rest[0].resource}
    assert resources == {
        "Observation": {"read", "search-type"},
        "Patient": {"read"},
        "Practitioner": {"read"},
        "Appointment": {"read", "search-type"},
        "MedicationRequest": {"read", "search-type"},
        "MedicationStatement": {"read", "search-type"},
        "Schedule": {"search-type"},
        "Slot": {"search-type"},
    }
    assert {p.name for p in statement.rest[0].resource[0].searchParam} == {"patient", "code", "date", "_count"}
