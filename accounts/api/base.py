"""The access rule applied to the API: the scoped base viewset, the scoped relation and the access-log helper.

Every viewset of patient data builds on `OwnedViewSet`, so its queryset goes through the model's
`for_user()` (built on `accounts.selectors.visible_patients`) and every read by another person is logged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db import models
from django.http import HttpRequest
from rest_framework import exceptions, relations, serializers, viewsets

from config.api import UUID_REGEX, client_ip, current_request_id

from ..models import AccessAction, User
from ..selectors import visible_patients
from ..services import record_access


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
