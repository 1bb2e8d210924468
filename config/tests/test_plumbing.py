"""API plumbing shared by every endpoint: error shape, body limits, request ids, logs, 404s, pagination."""

import io
import json
import logging
import uuid

import pytest
from django.test import override_settings
from rest_framework.test import APIClient
from structlog.stdlib import ProcessorFormatter

from accounts.tests.factories import CareTeamGrantFactory
from config.pagination import PageNumberPagination
from conftest import bearer

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login/"


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def test_validation_error_names_each_missing_field(api_client):
    response = api_client.post(LOGIN, {}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"type", "errors", "request_id"}
    assert body["type"] == "validation_error"
    assert sorted(body["errors"], key=lambda e: e["attr"]) == [
        {"code": "required", "detail": "This field is required.", "attr": "email"},
        {"code": "required", "detail": "This field is required.", "attr": "password"},
    ]
    assert _is_uuid(body["request_id"])


def test_malformed_json_is_a_parse_error(api_client):
    response = api_client.post(LOGIN, data='{"email": "a@b.org",', content_type="application/json")

    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "client_error"
    assert [e["code"] for e in body["errors"]] == ["parse_error"]
    assert body["errors"][0]["attr"] is None
    assert body["request_id"] == response["X-Request-ID"]


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", "email=a@b.org&password=x"),
        ("application/x-www-form-urlencoded", "email=a%40b.org&password=x"),
    ],
)
def test_non_json_body_is_unsupported_media_type(api_client, content_type, data):
    response = api_client.post(LOGIN, data=data, content_type=content_type)

    assert response.status_code == 415
    body = response.json()
    assert body["type"] == "client_error"
    assert [e["code"] for e in body["errors"]] == ["unsupported_media_type"]
    assert body["request_id"] == response["X-Request-ID"]


@override_settings(API_MAX_BODY_BYTES=100)
def test_body_over_the_limit_is_refused_with_413(api_client):
    payload = json.dumps({"email": "someone@example.org", "password": "p" * 200})
    assert len(payload.encode()) > 100

    response = api_client.post(LOGIN, data=payload, content_type="application/json")

    assert response.status_code == 413
    body = response.json()
    assert body == {
        "type": "client_error",
        "errors": [
            {
                "code": "request_too_large",
                "detail": f"The request body is {len(payload.encode())} bytes; the limit here is 100.",
                "attr": None,
            }
        ],
        "request_id": response["X-Request-ID"],
    }


@override_settings(API_MAX_BODY_BYTES=100)
def test_body_within_the_limit_reaches_the_view(api_client):
    payload = json.dumps({"email": "x@example.org"})
    assert len(payload.encode()) <= 100

    response = api_client.post(LOGIN, data=payload, content_type="application/json")

    assert response.status_code == 400  # the view answered: password is missing
    assert [e["attr"] for e in response.json()["errors"]] == ["password"]


@pytest.mark.parametrize("path", ["/health/", "/api/v1/auth/current-user/", "/api/v1/nope/"])
def test_every_response_carries_a_request_id(api_client, path):
    response = api_client.get(path)

    assert _is_uuid(response["X-Request-ID"])


def test_successful_response_carries_a_request_id(api_client, user):
    response = bearer(api_client, user).get("/api/v1/auth/current-user/")

    assert response.status_code == 200
    assert _is_uuid(response["X-Request-ID"])


def test_error_body_request_id_equals_the_header(api_client):
    response = api_client.get("/api/v1/auth/current-user/")

    assert response.status_code == 401
    assert response.json()["request_id"] == response["X-Request-ID"]


def test_each_request_gets_its_own_request_id(api_client):
    first = api_client.get("/health/")["X-Request-ID"]
    second = api_client.get("/health/")["X-Request-ID"]

    assert first != second


def test_client_sent_request_id_is_not_trusted(api_client):
    """django-structlog ignores X-Request-ID from the client unless TRUST_UPSTREAM_REQUEST_ID is set."""
    sent = "client-chosen-id-123"

    response = api_client.post(LOGIN, {}, format="json", HTTP_X_REQUEST_ID=sent)

    assert response["X-Request-ID"] != sent
    assert _is_uuid(response["X-Request-ID"])
    assert response.json()["request_id"] == response["X-Request-ID"]


@pytest.fixture
def json_log_lines():
    """Every line the LOGGING config would write to the console during the test, as parsed JSON.

    A capture handler using the project's own JSON formatter joins each logger that has the
    console handler (the root, and any logger configured not to propagate, such as "django").
    """
    manager = logging.getLogger().manager
    loggers = [logging.getLogger()] + [obj for obj in manager.loggerDict.values() if isinstance(obj, logging.Logger)]
    outputs = [
        logger for logger in loggers if any(isinstance(h.formatter, ProcessorFormatter) for h in logger.handlers)
    ]
    assert logging.getLogger() in outputs, "the LOGGING config installs the JSON console handler on the root logger"
    formatter = next(h.formatter for h in logging.getLogger().handlers if isinstance(h.formatter, ProcessorFormatter))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    for logger in outputs:
        logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        for logger in outputs:
            logger.removeHandler(handler)


def test_log_lines_during_a_request_are_json_with_the_request_id(api_client, json_log_lines):
    response = api_client.get("/api/v1/auth/current-user/")

    assert response.status_code == 401
    request_id = response["X-Request-ID"]
    lines = json_log_lines()  # each line parsed as JSON, or this raises
    events = {line["event"]: line for line in lines if line.get("request_id") == request_id}
    assert events["request_started"]["request"] == "GET /api/v1/auth/current-user/"
    assert events["request_finished"]["code"] == 401
    assert events["request_finished"]["level"] == "warning"


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/v1/auth/current-user/", 401), ("/api/v1/nope/", 404), ("/health/", 200)],
)
def test_every_log_line_of_a_request_carries_its_request_id(api_client, json_log_lines, path, status):
    """Django's own django.request lines are written after the context is cleared; they must not leak out bare."""
    response = api_client.get(path)

    assert response.status_code == status
    lines = json_log_lines()
    assert lines, "a request logs at least request_started and request_finished"
    assert [line.get("request_id") for line in lines] == [response["X-Request-ID"]] * len(lines), lines


@override_settings(ROOT_URLCONF="config.tests.urls_boom")
@pytest.mark.parametrize("path", ["/boom/api/", "/boom/django/"])
def test_unhandled_exception_answers_json_500_without_internals(path):
    client = APIClient(raise_request_exception=False)

    response = client.get(path)

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "type": "server_error",
        "errors": [{"code": "error", "detail": "Server Error (500)", "attr": None}],
        "request_id": response["X-Request-ID"],
    }
    assert b"boom" not in response.content


@override_settings(ROOT_URLCONF="config.tests.urls_boom")
def test_unhandled_exception_is_logged_as_json_with_traceback_and_request_id(json_log_lines):
    response = APIClient(raise_request_exception=False).get("/boom/django/")

    request_id = response["X-Request-ID"]
    lines = json_log_lines()
    assert [line.get("request_id") for line in lines] == [request_id] * len(lines), lines
    failed = [line for line in lines if line["event"] == "request_failed"]
    assert len(failed) == 1
    assert failed[0]["level"] == "error"
    assert failed[0]["code"] == 500
    assert failed[0]["exception"].splitlines()[-1] == "RuntimeError: django boom"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nope/",
        "/api/v1/care-team/not-a-uuid/",
        "/api/v1/care-team.json",
        "/api/v1/patients/123/",
    ],
)
def test_unknown_api_url_answers_json_404(api_client, user, path):
    response = bearer(api_client, user).get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "type": "client_error",
        "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}],
        "request_id": response["X-Request-ID"],
    }


def test_unknown_but_well_formed_object_id_is_404_in_the_error_shape(api_client, user):
    response = bearer(api_client, user).get(f"/api/v1/care-team/{uuid.uuid4()}/")

    assert response.status_code == 404
    body = response.json()
    assert body["type"] == "client_error"
    assert [e["code"] for e in body["errors"]] == ["not_found"]
    assert body["request_id"] == response["X-Request-ID"]


def test_list_answers_count_next_previous_results(api_client, user):
    CareTeamGrantFactory.create_batch(3, patient=user)

    response = bearer(api_client, user).get("/api/v1/care-team/", {"page_size": 2})

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["count", "next", "previous", "results"]
    assert body["count"] == 3
    assert body["next"] == "http://testserver/api/v1/care-team/?page=2&page_size=2"
    assert body["previous"] is None
    assert len(body["results"]) == 2

    second = api_client.get(body["next"]).json()
    assert second["next"] is None
    assert second["previous"] == "http://testserver/api/v1/care-team/?page_size=2"
    assert len(second["results"]) == 1
    assert {r["id"] for r in body["results"]}.isdisjoint(r["id"] for r in second["results"])


def test_page_size_is_capped_at_1000(api_client, user):
    assert PageNumberPagination.max_page_size == 1000
    CareTeamGrantFactory(patient=user)

    response = bearer(api_client, user).get("/api/v1/care-team/", {"page_size": 5000})

    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_page_size_above_the_cap_is_clamped_not_honoured():
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    request = Request(APIRequestFactory().get("/api/v1/care-team/", {"page_size": 5000}))

    assert PageNumberPagination().get_page_size(request) == 1000


def test_page_past_the_end_is_404_in_the_error_shape(api_client, user):
    response = bearer(api_client, user).get("/api/v1/care-team/", {"page": 99})

    assert response.status_code == 404
    body = response.json()
    assert [e["code"] for e in body["errors"]] == ["not_found"]
    assert body["request_id"] == response["X-Request-ID"]
