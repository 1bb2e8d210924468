"""Shared API plumbing: the error shape, JSON 404/500, the client's address and request id.

Plumbing imports no app (an import-linter contract says so); the scoped base viewset and the
access-log helper belong to the access rule and live in `accounts.api.base`.
"""

from __future__ import annotations

from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from drf_standardized_errors.formatter import ExceptionFormatter as BaseExceptionFormatter
from drf_standardized_errors.handler import ExceptionHandler as BaseExceptionHandler
from drf_standardized_errors.types import ErrorResponse
from rest_framework import exceptions, serializers
from rest_framework.fields import get_error_detail
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from .errors import ConflictError

UUID_REGEX = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def current_request_id() -> str:
    return structlog.contextvars.get_contextvars().get("request_id", "")


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, honouring NUM_PROXIES exactly as DRF's throttles do."""
    return BaseThrottle().get_ident(request) or None


def error_body(*, status_type: str, code: str, detail: str, attr: str | None = None) -> dict[str, Any]:
    return {
        "type": status_type,
        "errors": [{"code": code, "detail": detail, "attr": attr}],
        "request_id": current_request_id(),
    }


class ExceptionHandler(BaseExceptionHandler):
    """Maps the domain's exceptions: Django's ValidationError to 400, ConflictError to 409."""

    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, DjangoValidationError):
            detail = get_error_detail(exc)
            if isinstance(detail, dict) and NON_FIELD_ERRORS in detail:
                detail[api_settings.NON_FIELD_ERRORS_KEY] = detail.pop(NON_FIELD_ERRORS)
            return exceptions.ValidationError(detail)
        if isinstance(exc, RequestDataTooBig):
            too_large = exceptions.APIException("The request body is too large.", code="request_too_large")
            too_large.status_code = 413
            return too_large
        if isinstance(exc, ConflictError):
            conflict = Conflict(exc.detail, code=exc.code)
            conflict.status_code = exc.status
            return conflict
        return super().convert_known_exceptions(exc)

    def set_rollback(self) -> None:
        # A view that opted out of ATOMIC_REQUESTS has no request transaction to roll back;
        # marking the enclosing one (a test's, say) would break it.
        dispatch = getattr(type(self.context.get("view")), "dispatch", None)
        if not getattr(dispatch, "_non_atomic_requests", None):
            super().set_rollback()


class ExceptionFormatter(BaseExceptionFormatter):
    """The standard error shape, plus the request id that appears in the logs."""

    def format_error_response(self, error_response: ErrorResponse) -> Any:
        body = super().format_error_response(error_response)
        body["request_id"] = current_request_id()
        return body


class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def lockout_response(request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None):
    """django-axes' answer once an account and address have failed too often: 429 in our error shape."""
    from axes.helpers import get_cool_off

    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 3600
    response = JsonResponse(
        error_body(
            status_type="client_error",
            code="locked_out",
            detail=f"Too many failed attempts. Try again in {seconds // 60} minutes.",
        ),
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


def operation_outcome(*, code: str, diagnostics: str, status: int) -> JsonResponse:
    """A FHIR R4 OperationOutcome: what the FHIR API answers where the JSON API answers its error shape."""
    issue = {"severity": "error", "code": code, "diagnostics": diagnostics}
    body = {"resourceType": "OperationOutcome", "issue": [issue]}
    return JsonResponse(body, status=status, content_type="application/fhir+json")


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if request.path.startswith("/fhir/"):
        return operation_outcome(code="not-found", diagnostics=f"No such path: {request.path}", status=404)
    return JsonResponse(error_body(status_type="client_error", code="not_found", detail="Not found."), status=404)


def json_server_error(request: HttpRequest) -> JsonResponse:
    if request.path.startswith("/fhir/"):
        diagnostics = f"The server failed; request id {current_request_id()}."
        return operation_outcome(code="exception", diagnostics=diagnostics, status=500)
    return JsonResponse(error_body(status_type="server_error", code="error", detail="Server Error (500)"), status=500)


def json_bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(status_type="client_error", code="bad_request", detail="Bad request."), status=400)


def json_permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        error_body(status_type="client_error", code="permission_denied", detail="Permission denied."),
        status=403,
    )


# The parts of the API as API.md lists them, for `GET /api/v1/` (a client's or a person's first call).
API_PARTS = {
    "accounts": ["auth/", "care-team/", "access-log/"],
    "health_metrics": [
        "health-metrics/",
        "health-metrics/changes/",
        "health-metrics/metric-types/",
        "health-metrics/summary/",
        "health-metrics/trends/",
        "health-metrics/stats/",
        "health-metrics/targets/",
        "health-metrics/targets/changes/",
        "health-metrics/sources/",
        "health-metrics/alerts/",
        "health-metrics/alert-rules/",
        "health-metrics/health-score/",
        "health-metrics/export/",
        "health-metrics/exports/",
    ],
    "iot_devices": [
        "iot-devices/",
        "iot-devices/changes/",
        "iot-devices/ingest/",
        "iot-devices/heartbeat/",
        "iot-devices/alerts/",
    ],
    "records": ["dashboard/", "patients/"],
    "notifications": [
        "notifications/",
        "notifications/unread-count/",
        "notifications/preferences/",
        "notifications/webhooks/",
    ],
    "appointments": ["providers/", "appointments/"],
    "medications": [
        "medications/",
        "medications/catalog/",
        "medications/doses/",
        "medications/adherence/",
        "medications/stats/",
    ],
}


class ApiIndexView(APIView):
    """The API's parts, with where its documents live: what `GET /api/v1/` answers, to anyone."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="The API's parts and documents",
        responses=inline_serializer(
            "ApiIndex",
            {
                "name": serializers.CharField(),
                "version": serializers.CharField(),
                "docs": serializers.DictField(child=serializers.CharField()),
                "parts": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
            },
        ),
        tags=["api"],
    )
    def get(self, request: Request) -> Response:
        base = request.build_absolute_uri("/api/v1/")
        return Response(
            {
                "name": settings.SPECTACULAR_SETTINGS["TITLE"],
                "version": "v1",
                "docs": {
                    "openapi": request.build_absolute_uri("/api/schema/"),
                    "swagger_ui": request.build_absolute_uri("/api/docs/"),
                    "redoc": request.build_absolute_uri("/api/redoc/"),
                    "fhir": request.build_absolute_uri("/fhir/r4/metadata"),
                    "health": request.build_absolute_uri("/health/"),
                },
                "parts": {name: [f"{base}{path}" for path in paths] for name, paths in API_PARTS.items()},
            }
        )
