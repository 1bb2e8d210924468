"""The contract mobile developers generate clients from (issue #11 §1).

Every response of the suite is checked against the document by the root conftest (tests/schema_conformance.py);
these tests check the document itself, the checker, and the answers a client meets first or when it errs.
"""

import json
from datetime import timedelta

import pytest
from django.http import JsonResponse
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator
from rest_framework_simplejwt.tokens import AccessToken

from tests import schema_conformance

pytestmark = pytest.mark.django_db

DOCUMENT = SchemaGenerator().get_schema(request=None, public=True)
OPERATIONS = [
    (path, method, operation)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
    if isinstance(operation, dict)
]


def test_the_document_is_small_enough_for_a_phones_browser():
    size = len(json.dumps(DOCUMENT, separators=(",", ":")))
    assert size < 400_000, f"{size} bytes"


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS])
def test_every_operation_has_a_summary_and_its_errors_in_the_one_shape(path, method, operation):
    assert operation.get("summary"), "no summary"
    errors = {status: response for status, response in operation["responses"].items() if int(status) >= 400}
    assert "500" in errors or path.startswith("/fhir/")
    if operation.get("requestBody"):
        assert {"400", "413", "415"} <= errors.keys()
    if "{" in path:
        assert "404" in errors
    shape = "OperationOutcome" if path.startswith("/fhir/") else "ErrorResponse"
    for status, response in errors.items():
        if "$ref" in response:
            response = DOCUMENT["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        (media,) = response["content"].values()
        assert media["schema"] == {"$ref": f"#/components/schemas/{shape}"}, status


def test_no_component_is_an_error_shape_of_one_operation():
    names = DOCUMENT["components"]["schemas"]
    assert not [name for name in names if name.endswith(("ErrorResponse400", "ValidationError"))]
    assert not [name for name in names if name.startswith("ErrorResponse4")]


def test_writes_that_clients_code_against_carry_request_examples():
    for path, method in [
        ("/api/v1/health-metrics/", "post"),
        ("/api/v1/health-metrics/bulk-create/", "post"),
        ("/api/v1/iot-devices/ingest/", "post"),
    ]:
        media = DOCUMENT["paths"][path][method]["requestBody"]["content"]["application/json"]
        assert media.get("examples"), path


def test_the_readings_of_a_device_batch_are_typed():
    envelope = DOCUMENT["components"]["schemas"]["IngestEnvelopeRequest"]
    item = envelope["properties"]["readings"]["items"]
    reading = DOCUMENT["components"]["schemas"][item["$ref"].rsplit("/", 1)[1]]
    assert {"metric_type", "value", "unit", "recorded_at"} <= reading["properties"].keys()
    assert set(reading["required"]) == {"metric_type", "recorded_at"}


def test_the_checker_refuses_a_response_that_breaks_the_document():
    drifted = JsonResponse({"count": 1, "results": []}, status=200)  # stats answer a plain list
    problems = schema_conformance.check("GET", "/api/v1/health-metrics/stats/", drifted)
    assert problems
    assert "is not of type 'array'" in problems[0]

    undocumented = JsonResponse({}, status=418)
    assert "418 is not documented" in schema_conformance.check("GET", "/api/v1/health-metrics/", undocumented)[0]

    conforming = JsonResponse([], safe=False)
    assert schema_conformance.check("GET", "/api/v1/health-metrics/stats/", conforming) == []


def test_the_api_root_lists_its_parts_and_every_listed_path_exists(api_client):
    response = api_client.get("/api/v1/")

    assert response.status_code == 200
    body = response.json()
    assert body["docs"]["openapi"].endswith("/api/schema/")
    assert {"accounts", "health_metrics", "iot_devices"} <= body["parts"].keys()
    for paths in body["parts"].values():
        for url in paths:
            path = url.removeprefix("http://testserver")
            if path.endswith("auth/"):
                continue  # a prefix: auth/login/, auth/register/, ...
            resolve(path)


def test_the_site_root_leads_to_the_docs(api_client):
    response = api_client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/api/docs/"


@pytest.mark.parametrize(
    "path", ["/api/v1/no-such-part/", "/api/v1/health-metrics/not-a-uuid/", "/api/v1/iot-devices/12/", "/api/nope"]
)
def test_unknown_paths_and_malformed_ids_under_api_answer_the_error_shape(as_user, path):
    response = as_user.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["type"] == "client_error"
    assert [error["code"] for error in body["errors"]] == ["not_found"]


@pytest.mark.parametrize("path", ["/fhir/r4/NoSuchResource", "/fhir/r4/Observation/not-a-uuid", "/fhir/nope"])
def test_unknown_paths_under_fhir_answer_an_operation_outcome(as_user, path):
    response = as_user.get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-found"


def test_a_malformed_token_answers_one_error_entry(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
    response = api_client.get("/api/v1/auth/current-user/")

    assert response.status_code == 401
    assert [(e["code"], e["attr"]) for e in response.json()["errors"]] == [("token_not_valid", None)]


def test_an_expired_token_answers_one_error_entry_saying_so(api_client, user):
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(minutes=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = api_client.get("/api/v1/health-metrics/")

    assert response.status_code == 401
    errors = response.json()["errors"]
    assert [e["code"] for e in errors] == ["token_expired"]
    assert "refresh" in errors[0]["detail"]


@pytest.mark.parametrize(
    ("path", "attr", "some_choices"),
    [
        ("/api/v1/health-metrics/summary/?metric_type=heart_rate&period=fortnight", "period", "day, week, month"),
        ("/api/v1/health-metrics/?source=telepathy", "source", "manual, device"),
        ("/api/v1/health-metrics/alerts/?status=maybe", "status", "open"),
    ],
)
def test_an_unknown_enum_parameter_names_the_valid_choices(as_user, path, attr, some_choices):
    response = as_user.get(path)

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert (error["attr"], error["code"]) == (attr, "invalid_choice")
    assert some_choices in error["detail"]


def test_an_unknown_choice_in_a_body_names_the_valid_choices(as_user):
    response = as_user.post("/api/v1/iot-devices/", {"name": "Cuff", "device_type": "toaster"}, format="json")

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["attr"] == "device_type"
    assert "Valid choices: smartwatch" in error["detail"]


def test_stats_answer_a_plain_list_as_documented(as_user):
    response = as_user.get("/api/v1/health-metrics/stats/")

    assert response.status_code == 200
    assert isinstance(response.json(), list)
    documented = DOCUMENT["paths"]["/api/v1/health-metrics/stats/"]["get"]["responses"]["200"]
    assert documented["content"]["application/json"]["schema"]["type"] == "array"


def test_default_alert_rules_document_their_null_patient(as_user):
    response = as_user.get("/api/v1/health-metrics/alert-rules/defaults/")

    assert response.status_code == 200
    assert response.json()
    assert all(rule["patient"] is None for rule in response.json())
    rule = DOCUMENT["components"]["schemas"]["DefaultAlertRule"]
    assert rule["properties"]["patient"]["nullable"] is True
