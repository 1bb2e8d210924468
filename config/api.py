"""Shared API plumbing: pagination, the error shape, the scoped base viewset, JSON 404/500.

No models live here; the access rule itself is `accounts.selectors.visible_patients`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import structlog
from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.http import HttpRequest, HttpResponse, JsonResponse
from drf_standardized_errors.formatter import ExceptionFormatter as BaseExceptionFormatter
from drf_standardized_errors.handler import ExceptionHandler as BaseExceptionHandler
from drf_standardized_errors.types import ErrorResponse
from rest_framework import exceptions, relations, viewsets
from rest_framework.fields import get_error_detail
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from accounts.models import AccessAction, User
from accounts.selectors import visible_patients
from accounts.services import record_access

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


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(status_type="client_error", code="not_found", detail="Not found."), status=404)


def json_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body(status_type="server_error", code="error", detail="Server Error (500)"), status=500)


def json_bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(status_type="client_error", code="bad_request", detail="Bad request."), status=400)


def json_permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        error_body(status_type="client_error", code="permission_denied", detail="Permission denied."),
        status=403,
    )


def log_patient_access(request: HttpRequest, entries: Iterable[tuple[Any, str]], *, action: str, resource: str) -> None:
    """Append access-log rows for (patient id, object id) entries that are not the actor's own.

    Every read or write of someone else's data goes through here: the API's viewsets, the FHIR views, the admin.
    """
    actor = request.user
    entries = [(patient_id, object_id) for patient_id, object_id in entries if patient_id != actor.pk]
    if entries:
        record_access(
            actor=actor,
            entries=entries,
            resource=resource,
            action=action,
            ip=client_ip(request),
            request_id=current_request_id(),
        )


class OwnedViewSet(viewsets.GenericViewSet):
    """The one place API querysets are scoped.

    Subclasses name a `model` whose manager has `for_user(user)` built on the access rule;
    there is no class-level queryset, so an unscoped query is never one typo away. Objects
    outside the scope are 404. Every read or write of a patient's data by someone other
    than that patient gets an access-log row. `?patient=<id>` narrows a list to one patient
    the user may see (404 otherwise).
    """

    model: type[models.Model]
    # The field naming the patient whose data an object is; None when the object is the patient.
    patient_field: str | None = "patient"
    access_scope: str | None = None
    lookup_value_regex = UUID_REGEX

    def get_queryset(self) -> models.QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return self.model.objects.none()
        queryset = self.model.objects.for_user(self.request.user)
        patient = self.requested_patient()
        if patient is not None:
            queryset = queryset.filter(**{self.patient_field or "pk": patient.pk})
        return queryset

    def requested_patient(self) -> User | None:
        raw = self.request.query_params.get("patient")
        if not raw:
            return None
        try:
            patient_id = uuid.UUID(raw)
        except ValueError:
            raise exceptions.ValidationError({"patient": ["Must be a patient id (UUID)."]}) from None
        patient = visible_patients(self.request.user, self.access_scope).filter(pk=patient_id).first()
        if patient is None:
            raise exceptions.NotFound("No such patient.")
        return patient

    def get_object(self) -> models.Model:
        obj = super().get_object()
        action = {
            "retrieve": AccessAction.READ,
            "update": AccessAction.UPDATE,
            "partial_update": AccessAction.UPDATE,
            "destroy": AccessAction.DELETE,
        }.get(self.action, AccessAction.READ)
        self.log_access([obj], action=action, per_object=True)
        return obj

    def paginate_queryset(self, queryset: Any) -> list | None:
        page = super().paginate_queryset(queryset)
        self.log_access(page if page is not None else queryset, action=AccessAction.LIST, per_object=False)
        return page

    def log_access(self, objects: Iterable[models.Model], *, action: str, per_object: bool) -> None:
        """Record reads and writes of other people's data (one row per object, or per patient for lists)."""
        entries: dict[tuple[Any, str], None] = {}
        for obj in objects:
            patient_id = obj.pk if self.patient_field is None else getattr(obj, f"{self.patient_field}_id")
            entries[(patient_id, str(obj.pk) if per_object else "")] = None
        self.log_patient_access(list(entries), action=action, resource=self.model._meta.model_name)

    def log_patient_access(self, entries: list[tuple[Any, str]], *, action: str, resource: str) -> None:
        log_patient_access(self.request, entries, action=action, resource=resource)


class OwnedRelatedField(relations.PrimaryKeyRelatedField):
    """A writable relation limited to what the requesting user may see, so nobody attaches another's object."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().for_user(self.context["request"].user)
