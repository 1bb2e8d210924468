"""The access rule applied to the API: the scoped base viewset, the scoped relation and the access-log helper.

Every viewset of patient data builds on `OwnedViewSet`, so its queryset goes through the model's
`for_user()` (built on `accounts.selectors.visible_patients`) and every read by another person is logged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import F
from django.http import Http404, HttpRequest
from rest_framework import exceptions, relations, serializers, viewsets
from rest_framework.permissions import SAFE_METHODS

from config.api import UUID_REGEX, client_ip, current_request_id

from ..models import AccessAction, User
from ..selectors import visible_patients
from ..services import record_access, record_refused_write


def log_patient_access(request: HttpRequest, entries: Iterable[tuple[Any, str]], *, action: str, resource: str) -> None:
    """Append access-log rows for (patient id, object id) entries that are not the actor's own.

    Every read or write of someone else's data goes through here: the API's viewsets, the FHIR views, the admin.
    Within one request an entry is written once, however many code paths report the same read or write.
    """
    actor = request.user
    logged = _logged_in(request)
    fresh = []
    for patient_id, object_id in entries:
        key = (str(patient_id), object_id, resource, action)
        if patient_id != actor.pk and key not in logged:
            logged.add(key)
            fresh.append((patient_id, object_id))
    entries = fresh
    if entries:
        record_access(
            actor=actor,
            entries=entries,
            resource=resource,
            action=action,
            ip=client_ip(request),
            request_id=current_request_id(),
        )


def _logged_in(request: HttpRequest) -> set:
    """The access-log entries this request has written (kept on Django's request, under DRF's too)."""
    request = getattr(request, "_request", request)
    if not hasattr(request, "_access_logged"):
        request._access_logged = set()
    return request._access_logged


def log_refused_write(
    request: HttpRequest, *, model: type[models.Model], patient_lookup: str, object_id: Any, resource: str
) -> None:
    """A `refused` access-log row when a write to someone else's object was answered 404 or 403.

    The row is written only when the object exists and is another person's, by one INSERT ... SELECT run
    the same way for a made-up id, so the answer does not tell the two apart. It runs after the request's
    transaction (config.middleware.AfterTransactionMiddleware), which the refusal rolls back.
    """
    try:
        object_id = str(uuid.UUID(str(object_id)))
    except ValueError:
        return
    actor = request.user
    patients = (
        model._default_manager.filter(pk=object_id)
        .exclude(**{patient_lookup: actor.pk})
        .values(refused_patient_id=F(patient_lookup))
    )

    def write() -> None:
        record_refused_write(
            actor=actor,
            patients=patients,
            resource=resource,
            object_id=object_id,
            ip=client_ip(request),
            request_id=current_request_id(),
        )

    deferred = getattr(request, "after_transaction", None)
    if deferred is None:  # outside a request's transaction (no middleware): nothing to outlive
        write()
    else:
        deferred.append(write)


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
    # The lookup from an object to its patient's id in a query, where patient_field does not give it.
    patient_lookup: str | None = None
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
        writing = self.request.method not in SAFE_METHODS
        action = {
            "retrieve": AccessAction.READ,
            "update": AccessAction.UPDATE,
            "partial_update": AccessAction.UPDATE,
            "destroy": AccessAction.DELETE,
        }.get(self.action, AccessAction.UPDATE if writing else AccessAction.READ)  # detail actions (acknowledge)
        self.log_access([obj], action=action, per_object=True)
        return obj

    def handle_exception(self, exc: Exception) -> Any:
        """A write to an object answered 404 (not visible) or 403 (visible, not the actor's to change) is logged."""
        refused = isinstance(exc, Http404 | exceptions.NotFound | exceptions.PermissionDenied | PermissionDenied)
        object_id = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        user = getattr(self.request, "user", None)
        if refused and object_id and self.request.method not in SAFE_METHODS and user and user.is_authenticated:
            log_refused_write(
                self.request,
                model=self.model,
                patient_lookup=self.patient_lookup or self.patient_field or "pk",
                object_id=object_id,
                resource=self.model._meta.model_name,
            )
        return super().handle_exception(exc)

    def paginate_queryset(self, queryset: Any) -> list | None:
        page = super().paginate_queryset(queryset)
        self.log_access(page if page is not None else queryset, action=AccessAction.LIST, per_object=False)
        return page

    def require_patient(self, obj: models.Model, *, what: str) -> None:
        """Writes to a patient's own records are the patient's: a consented clinician reads them, 403 to change."""
        patient_id = obj.pk if self.patient_field is None else getattr(obj, f"{self.patient_field}_id")
        if patient_id != self.request.user.pk:
            raise exceptions.PermissionDenied(f"Only the patient changes their {what}.")

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


class PatientQuerySerializer(serializers.Serializer):
    """The `?patient=` parameter of OwnedViewSet's reads, for the schema and for views that validate it."""

    patient = serializers.UUIDField(required=False, help_text="Clinicians: a consented patient's id.")
